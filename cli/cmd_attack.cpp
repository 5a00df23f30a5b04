// advgrad attack --model NAME --weights FILE | --model FILE.onnx [--weights FILE] --attack NAME --eps E --out grid.png [...]
// Attacks the first few samples of a split (or those of --indices, or --random N of them) and shows the
// result: a PNG grid with the clean images, the adversarial images and the perturbation (magnified), and
// the predictions before and after per image.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <memory>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "advgrad/cli/commands.h"
#include "advgrad/cli/common.h"
#include "advgrad/core/error.h"
#include "advgrad/core/generator.h"
#include "advgrad/data/image_write.h"
#include "advgrad/data/labelled_grid.h"

namespace advgrad::cli {
namespace {

struct AttackCmdArgs {
  ModelDataArgs md;
  AttackArgs attack;
  std::string out;
  int64_t scale = 4;
  std::string indices;  // --indices 3,17,42: these rows of the split
  int64_t random = 0;   // --random N: N rows drawn with --seed
  NormalizationArgs normalization;  // --mean, --std
};

// The perturbation of each sample, scaled so that its largest |delta| reaches 0 or 1 around a gray 0.5
// (a sample left unchanged is plain gray). Also returns each sample's largest |delta|.
Tensor perturbation_image(const Tensor& x, const Tensor& x_adv, std::vector<double>& max_abs) {
  const int64_t n = x.size(0), per = x.numel() / std::max<int64_t>(n, 1);
  std::vector<float> clean = x.to_vector<float>(), adv = x_adv.to_vector<float>(), vis(clean.size(), 0.5f);
  max_abs.assign(size_t(n), 0.0);
  for (int64_t i = 0; i < n; ++i) {
    const size_t begin = size_t(i * per), end = size_t((i + 1) * per);
    double m = 0;
    for (size_t k = begin; k < end; ++k) m = std::max(m, std::abs(double(adv[k]) - double(clean[k])));
    max_abs[size_t(i)] = m;
    if (m > 0)
      for (size_t k = begin; k < end; ++k) vis[k] = float(0.5 + (double(adv[k]) - double(clean[k])) / (2 * m));
  }
  return from_vector(vis, x.shape());
}

// --indices "3,17,42": the rows, checked as written (plain whole numbers, none repeated); the range is
// checked against the split once it is loaded. Returns the problem, or "" when the text is fine.
std::string parse_indices(const std::string& text, std::vector<int64_t>& rows) {
  rows.clear();
  if (text.empty() || text.back() == ',') return "must be a comma-separated list of sample indices, got '" + text + "'";
  std::set<int64_t> seen;
  std::stringstream in(text);
  for (std::string item; std::getline(in, item, ',');) {
    const bool digits = !item.empty() && item.size() <= 15 &&
                        std::all_of(item.begin(), item.end(), [](char c) { return c >= '0' && c <= '9'; });
    if (!digits) return "'" + item + "' is not a sample index (a whole number >= 0) in '" + text + "'";
    const int64_t row = std::stoll(item);
    if (!seen.insert(row).second) return "index " + item + " is listed twice in '" + text + "'";
    rows.push_back(row);
  }
  return "";
}

// Philox stream of --random's choice: apart from the attacks' own streams of the same --seed.
constexpr uint64_t kRandomRowsStream = 0x726f7773;  // "rows"

// N distinct rows of a split of `size`, uniformly (a partial Fisher-Yates shuffle keyed by seed and
// position), in increasing order.
std::vector<int64_t> random_rows(int64_t n, int64_t size, uint64_t seed) {
  std::vector<int64_t> all(static_cast<size_t>(size));
  for (int64_t i = 0; i < size; ++i) all[size_t(i)] = i;
  for (int64_t i = 0; i < n; ++i) {
    const int64_t j = i + int64_t(Generator::below(seed, kRandomRowsStream, uint64_t(i), uint64_t(size - i)));
    std::swap(all[size_t(i)], all[size_t(j)]);
  }
  std::vector<int64_t> rows(all.begin(), all.begin() + n);
  std::sort(rows.begin(), rows.end());
  return rows;
}

// The rows to attack: --indices, --random N, or the first --limit.
std::vector<int64_t> chosen_rows(const AttackCmdArgs& args, const Dataset& split) {
  if (!args.indices.empty()) {
    std::vector<int64_t> rows;
    parse_indices(args.indices, rows);  // its text was checked when parsed
    for (int64_t row : rows)
      if (row >= split.size())
        throw CLI::ValidationError("--indices", "index " + std::to_string(row) + " is beyond the " +
                                                    std::to_string(split.size()) + " samples of " + split.source +
                                                    " (" + args.md.split + ": 0 to " + std::to_string(split.size() - 1) + ")");
    return rows;
  }
  if (args.random > 0) {
    if (args.random > split.size())
      throw CLI::ValidationError("--random", std::to_string(args.random) + " samples asked for, but " + split.source +
                                                 " (" + args.md.split + ") has " + std::to_string(split.size()));
    return random_rows(args.random, split.size(), args.attack.seed);
  }
  std::vector<int64_t> rows;
  for (int64_t i = 0; i < std::min(args.md.limit, split.size()); ++i) rows.push_back(i);
  return rows;
}

std::string class_name(const Samples& s, int64_t label) {
  if (label >= 0 && label < int64_t(s.data.class_names.size())) return s.data.class_names[size_t(label)];
  return std::to_string(label);
}

void run(const AttackCmdArgs& args, const CLI::App& cmd) {
  if (is_ensemble(args.attack))
    throw CLI::ValidationError("--attack", "the attack command runs one attack, not a preset such as '" +
                                               args.attack.attack + "' (use advgrad eval)");
  const std::vector<AttackSpec> specs = attack_specs(args.attack, cmd);
  if (specs.size() != 1)
    throw CLI::ValidationError("--attack", "the attack command runs one attack, got '" + args.attack.attack + "'");
  const AttackSpec& spec = specs.front();
  const bool chosen = !args.indices.empty() || args.random > 0;
  if (!chosen && args.md.limit < 1) throw ValueError("--limit: the attack command needs at least 1 sample, got 0");
  apply_threads(args.attack);
  LoadedModel loaded = load_model(args.md);
  apply_normalization(args.normalization, loaded);
  const Samples s = load_samples(args.md, loaded, [&](const Dataset& split) { return chosen_rows(args, split); });
  Module* model = loaded.module.get();

  auto attack = make_attack(spec.name, spec.options);
  const bool targeted = attack->options().targeted;  // apgd-t chooses its own targets
  const Tensor targets = targeted ? next_class_targets(s.y, loaded.num_classes) : Tensor();  // evaluate()'s policy
  AttackResult r = attack->run(*model, s.x, s.y, targets);
  const auto target_of = targeted ? targets.to_vector<int64_t>() : std::vector<int64_t>();

  const auto labels = s.y.to_vector<int64_t>();
  const auto before = argmax(predict(*model, s.x), 1).to_vector<int64_t>();
  const auto after = argmax(predict(*model, r.x_adv), 1).to_vector<int64_t>();
  // The picture shows the dataset's images (a sequence model's [28, 28] samples are [1, 28, 28] images).
  Shape image_batch = {s.n()};
  image_batch.insert(image_batch.end(), s.data.sample_shape.begin(), s.data.sample_shape.end());
  const Tensor clean_images = reshape(s.x, image_batch), adv_images = reshape(r.x_adv, image_batch);
  std::vector<double> max_abs;
  Tensor delta_image = perturbation_image(clean_images, adv_images, max_abs);

  GridOptions grid;
  grid.cols = s.n();
  grid.scale = args.scale;
  // Labelled: each column framed by its outcome (red fooled, gray already wrong, green still right) with
  // the label, the clean and the adversarial prediction written below it.
  const GridImage picture = make_labelled_grid({make_grid(concat({clean_images, adv_images, delta_image}, 0), grid),
                                                grid.separator, s.n(), labels, before, after, s.data.class_names,
                                                text_scale_for(grid.scale)});
  write_png_image(args.out, picture);

  std::printf("%s on %s (%s %s), eps %g, %s\n\n", spec.name.c_str(), args.md.model.c_str(), s.data.kind.c_str(),
              args.md.split.c_str(), spec.options.eps,
              targeted                   ? "targeted at (label + 1) mod classes"
              : spec.name == "apgd-t" ? "targets: the model's top other classes"
                                      : "untargeted");
  size_t width = 11;  // "adversarial"
  for (const auto& n : s.data.class_names) width = std::max(width, n.size());
  const int w = int(width);
  std::printf("%5s  %-*s  %-*s  %-*s  ", "#", w, "label", w, "clean", w, "adversarial");
  if (targeted) std::printf("%-*s  ", w, "target");
  std::printf("%8s\n", "max |d|");
  int64_t correct_before = 0, correct_after = 0, reached = 0;
  for (size_t i = 0; i < labels.size(); ++i) {
    correct_before += before[i] == labels[i];
    correct_after += after[i] == labels[i];
    // Attack::run leaves alone the samples already "fooled" on the clean input: misclassified ones
    // (untargeted), or ones already classified as their target (targeted).
    std::string note, target_column;
    if (targeted) {
      const int64_t target = target_of[i];
      reached += after[i] == target;
      target_column = class_name(s, target);
      if (before[i] == target)
        note = "on target already (not attacked)";
      else if (after[i] == target)
        note = "target reached";
      else if (after[i] != labels[i])
        note = before[i] == labels[i] ? "fooled, target missed" : "wrong already, target missed";
      else
        note = "target missed";
    } else {
      if (before[i] != labels[i])
        note = "wrong already (not attacked)";
      else if (after[i] != labels[i])
        note = "fooled";
    }
    std::printf("%5lld  %-*s  %-*s  %-*s  ", static_cast<long long>(s.rows[i]), w, class_name(s, labels[i]).c_str(),
                w, class_name(s, before[i]).c_str(), w, class_name(s, after[i]).c_str());
    if (targeted) std::printf("%-*s  ", w, target_column.c_str());
    std::printf("%8s  %s\n", fixed(max_abs[i], 4).c_str(), note.c_str());
  }
  const int64_t n = s.n();
  std::printf("\naccuracy %lld/%lld clean, %lld/%lld adversarial", static_cast<long long>(correct_before),
              static_cast<long long>(n), static_cast<long long>(correct_after), static_cast<long long>(n));
  if (targeted) std::printf("; %lld/%lld on target", static_cast<long long>(reached), static_cast<long long>(n));
  std::printf("\n");
  std::printf("wrote %s: %lldx%lld px; rows: clean, adversarial, perturbation (per image, max |d| -> 0 or 1 around "
              "0.5); frames: red fooled, gray wrong already, green still right; below: label, clean and "
              "adversarial prediction\n",
              args.out.c_str(), static_cast<long long>(picture.width), static_cast<long long>(picture.height));
}

}  // namespace

void register_attack(CLI::App& app) {
  auto args = std::make_shared<AttackCmdArgs>();
  args->md.limit = 8;
  CLI::App* cmd = app.add_subcommand("attack", "Attack a few samples and write clean/adversarial/perturbation images");
  add_model_data_options(*cmd, args->md, "Attack the first N samples");
  add_attack_options(*cmd, args->attack, "Attack (case-insensitive)", /*with_ensemble=*/false);
  cmd->footer(attacks_help(/*with_ensemble=*/false) + "\n" + models_help());
  cmd->add_option("--out", args->out, "PNG file to write (3 rows: clean, adversarial, perturbation)")->required();
  cmd->add_option("--scale", args->scale, "Integer upscaling of each image in the PNG")
      ->check(integer_in(1, 64))
      ->capture_default_str();
  // Which samples: the first --limit (the default), or chosen by index or at random.
  CLI::Option* indices =
      cmd->add_option("--indices", args->indices,
                      "Attack these samples of the split, e.g. 3,17,42 (instead of the first --limit)")
          ->check(CLI::Validator(
              [](std::string& text) {
                std::vector<int64_t> rows;
                return parse_indices(text, rows);
              },
              "I,J,..."));
  CLI::Option* random = cmd->add_option("--random", args->random, "Attack N samples of the split drawn at random with --seed")
                            ->check(integer_in(1, AttackLimits::max_samples));
  indices->excludes(random);
  for (CLI::Option* choice : {indices, random}) choice->excludes(cmd->get_option("--limit"));
  add_normalization_options(*cmd, args->normalization);
  cmd->callback([args, cmd] { run(*args, *cmd); });
}

}  // namespace advgrad::cli
