// advgrad data [PATH] [--split train|test|both] [--json]
// Describes a dataset directory: its kind, the sample count of each split, the sample shape, the class
// names and the label histogram.
#include <cstdio>
#include <iostream>
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "advgrad/cli/commands.h"
#include "advgrad/cli/common.h"
#include "advgrad/data/load_dataset.h"
#include "advgrad/data/mnist.h"

namespace advgrad::cli {
namespace {

struct DataArgs {
  std::string path;
  std::string split = "both";
  bool json = false;
};

struct SplitInfo {
  std::string name;      // "train" or "test"
  std::string source;    // the directory the split was read from
  Dataset data;
  std::vector<int64_t> histogram;  // samples per label
};

std::vector<int64_t> label_histogram(const Dataset& d) {
  std::vector<int64_t> h(static_cast<size_t>(d.num_classes), 0);
  for (int64_t label : d.labels) ++h[size_t(label)];
  return h;
}

// Differences between the splits worth telling (image folders may have train/ and test/ that disagree).
std::vector<std::string> notes_for(const std::vector<SplitInfo>& splits) {
  std::vector<std::string> notes;
  const SplitInfo& first = splits.front();
  for (size_t i = 1; i < splits.size(); ++i) {
    const SplitInfo& s = splits[i];
    if (s.source == first.source && s.data.kind == "image-folder")
      notes.push_back("no " + first.name + "/ and " + s.name + "/ subfolders: both splits are the same images");
    if (s.data.sample_shape != first.data.sample_shape)
      notes.push_back(s.name + " samples are " + shape_str(s.data.sample_shape) + ", " + first.name + " samples " +
                      shape_str(first.data.sample_shape));
    if (s.data.class_names != first.data.class_names)
      notes.push_back(s.name + " has other classes than " + first.name + " (the class column shows " + first.name + "'s)");
  }
  return notes;
}

void print_json(const std::string& path, const std::vector<SplitInfo>& splits, const std::vector<std::string>& notes) {
  const Dataset& first = splits.front().data;
  nlohmann::ordered_json out;
  out["path"] = path;
  out["kind"] = first.kind;
  out["sample_shape"] = first.sample_shape;
  out["num_classes"] = first.num_classes;
  out["class_names"] = first.class_names;
  nlohmann::ordered_json split_objects = nlohmann::ordered_json::object();
  for (const auto& s : splits) {
    nlohmann::ordered_json o;
    o["source"] = s.source;
    o["size"] = s.data.size();
    o["histogram"] = s.histogram;
    if (s.data.class_names != first.class_names) o["class_names"] = s.data.class_names;
    if (s.data.sample_shape != first.sample_shape) o["sample_shape"] = s.data.sample_shape;
    split_objects[s.name] = o;
  }
  out["splits"] = split_objects;
  out["notes"] = notes;
  std::cout << out.dump() << "\n";
}

void print_table(const std::string& path, const std::vector<SplitInfo>& splits, const std::vector<std::string>& notes) {
  const Dataset& first = splits.front().data;
  std::printf("dataset       %s\n", first.kind.c_str());
  std::printf("path          %s\n", path.c_str());
  std::printf("sample shape  %s (C, H, W)\n", shape_str(first.sample_shape).c_str());
  std::printf("classes       %lld\n", static_cast<long long>(first.num_classes));
  for (const auto& s : splits)
    std::printf("%-13s %lld samples (%s)\n", s.name.c_str(), static_cast<long long>(s.data.size()), s.source.c_str());

  size_t rows = 0, name_width = 5;
  for (const auto& s : splits) rows = std::max(rows, s.histogram.size());
  for (const auto& n : first.class_names) name_width = std::max(name_width, n.size());
  std::printf("\nlabel  %-*s", int(name_width), "class");
  for (const auto& s : splits) std::printf("  %8s", s.name.c_str());
  std::printf("\n");
  for (size_t label = 0; label < rows; ++label) {
    const std::string name = label < first.class_names.size() ? first.class_names[label] : "";
    std::printf("%5zu  %-*s", label, int(name_width), name.c_str());
    for (const auto& s : splits) {
      if (label < s.histogram.size())
        std::printf("  %8lld", static_cast<long long>(s.histogram[label]));
      else
        std::printf("  %8s", "-");
    }
    std::printf("\n");
  }
  for (const auto& n : notes) std::printf("note: %s\n", n.c_str());
}

void run(const DataArgs& args) {
  const std::string path = args.path.empty() ? default_fashion_mnist_dir() : args.path;
  std::vector<std::string> names;
  if (args.split == "both")
    names = {"train", "test"};
  else
    names = {args.split};
  std::vector<SplitInfo> splits;
  for (const auto& name : names) {
    SplitInfo s;
    s.name = name;
    s.source = detect_dataset(path, name).dir;
    s.data = load_dataset(path, name);
    s.histogram = label_histogram(s.data);
    splits.push_back(std::move(s));
  }
  const auto notes = notes_for(splits);
  if (args.json)
    print_json(path, splits, notes);
  else
    print_table(path, splits, notes);
}

}  // namespace

void register_data(CLI::App& app) {
  auto args = std::make_shared<DataArgs>();
  CLI::App* cmd = app.add_subcommand("data", "Describe a dataset: kind, split sizes, sample shape, classes, label histogram");
  cmd->add_option("path", args->path,
                  "Dataset directory: MNIST-family IDX files, CIFAR-10/100 binary, or an image folder "
                  "(default: " + default_fashion_mnist_dir() + ")");
  cmd->add_option("--split", args->split, "Which split(s) to read")
      ->check(CLI::IsMember({"train", "test", "both"}))
      ->capture_default_str();
  cmd->add_flag("--json", args->json, "Print one JSON object instead of a table");
  cmd->callback([args] { run(*args); });
}

}  // namespace advgrad::cli
