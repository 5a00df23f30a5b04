// `advgrad report`, run as a child process (tests/cli_runner.h): the page holds the numbers of the run
// files, escapes every string taken from them, embeds its images as data: URIs and fetches nothing; bad
// run directories are one error line naming the file, exit status 2, and no page. The run files are
// written by the trainer's own writers (train/run_files.h), so they are the files `advgrad train` writes.
#include <doctest/doctest.h>
#include <nlohmann/json.hpp>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>
#include <tuple>
#include <vector>

#include "advgrad/data/image_write.h"
#include "advgrad/train/config.h"
#include "advgrad/train/run_files.h"
#include "cli_runner.h"

using namespace advgrad;
using advgrad::testing::lines_of;
using advgrad::testing::run_cli;
using advgrad::testing::slurp;
using advgrad::testing::TempDir;
namespace fs = std::filesystem;

namespace {

void write(const std::string& path, const std::string& text) {
  std::ofstream f(path, std::ios::binary);
  f << text;
}

EpochMetrics epoch(int k, double loss, double val_clean, double val_pgd, const std::string& note = "") {
  EpochMetrics m;
  m.epoch = k, m.method = "pgd", m.train_loss = loss, m.train_clean_acc = 0.5, m.train_adv_acc = 0.25;
  m.val_clean_acc = val_clean, m.val_pgd_acc = val_pgd, m.lr = 0.05, m.eps = 0.1, m.seconds = 1.5, m.note = note;
  m.train_adv_acc_of = "adversarial", m.train_clean_acc_of = "fixed training sample";
  return m;
}

// A 6 x 4 RGB picture with a different colour in every pixel.
GridImage small_picture() {
  GridImage image;
  image.height = 4, image.width = 6, image.channels = 3;
  for (int64_t i = 0; i < image.height * image.width * 3; ++i) image.pixels.push_back(uint8_t(i * 37 % 256));
  return image;
}

// A finished two-epoch run: clean 81.25%, FGSM 43.75%, PGD-20 31.25% on 64 test samples.
struct RunSpec {
  std::string note = "";         // metrics note of epoch 2
  std::string stop_reason = "";  // summary.json's
  std::string data = "";         // config.json's data directory
  bool png = true;
  double clean = 0.8125, fgsm = 0.4375, pgd = 0.3125;
};
std::string write_run(const std::string& dir, const RunSpec& spec = {}) {
  fs::create_directories(dir);
  TrainConfig config;
  config.epochs = 2, config.data = spec.data, config.out = "runs/fixture";  // (JSON needs UTF-8; dir may not be)
  write(dir + "/config.json", config_json(config));
  write(dir + "/metrics.jsonl", metrics_json(epoch(1, 1.875, 0.625, 0.375)) + "\n" +
                                    metrics_json(epoch(2, 1.4375, 0.6875, 0.421875, spec.note)) + "\n");
  TrainSummary summary;
  summary.clean_acc = spec.clean, summary.fgsm_acc = spec.fgsm, summary.pgd_acc = spec.pgd;
  summary.test_samples = 64, summary.epochs_done = 2, summary.finished = spec.stop_reason.empty();
  summary.stop_reason = spec.stop_reason, summary.param_sha256 = "ab12";
  write(dir + "/summary.json", summary_json(summary, config));
  if (spec.png) write_png_image(dir + "/adversarial.png", small_picture());
  return dir;
}

// Base64 decoding written here (not the encoder under test): what a browser does with the data: URI.
std::string base64_decode(const std::string& text) {
  const std::string alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  uint32_t bits = 0;
  int count = 0;
  for (char ch : text) {
    if (ch == '=') break;
    const size_t v = alphabet.find(ch);
    if (v == std::string::npos) return "not base64: " + std::string(1, ch);
    bits = bits << 6 | uint32_t(v), count += 6;
    if (count >= 8) out += char((bits >> (count - 8)) & 0xFF), count -= 8;
  }
  return out;
}

// The payloads of every data:image/png URI of the page.
std::vector<std::string> png_uris(const std::string& html) {
  std::vector<std::string> found;
  const std::string start = "src=\"data:image/png;base64,";
  for (size_t at = html.find(start); at != std::string::npos; at = html.find(start, at + 1)) {
    const size_t from = at + start.size(), to = html.find('"', from);
    REQUIRE(to != std::string::npos);
    found.push_back(html.substr(from, to - from));
  }
  return found;
}

size_t count_of(const std::string& text, const std::string& what) {
  size_t n = 0;
  for (size_t at = text.find(what); at != std::string::npos; at = text.find(what, at + 1)) ++n;
  return n;
}

// The failure contract for a bad run directory: exit status 2, nothing on stdout, exactly one line
// "error: ..." naming the problem, and no page written.
void check_refused(const std::vector<std::string>& dirs, const std::string& must_contain, const TempDir& tmp) {
  std::vector<std::string> args{"report"};
  args.insert(args.end(), dirs.begin(), dirs.end());
  args.insert(args.end(), {"--out", tmp / "refused.html"});
  const auto r = run_cli(args);
  INFO("stderr: ", r.err);
  CHECK(r.exited);
  CHECK(r.status == 2);
  CHECK(r.out.empty());
  const auto lines = lines_of(r.err);
  REQUIRE(lines.size() == 1);
  CHECK(lines[0].rfind("error: ", 0) == 0);
  CHECK(lines[0].find(must_contain) != std::string::npos);
  CHECK(!fs::exists(tmp / "refused.html"));
}

}  // namespace

TEST_CASE("report: the page has summary.json's numbers, the epoch table and the PNG as a data: URI") {
  TempDir tmp("advgrad_report");
  const std::string run = write_run(tmp / "run1");
  const auto r = run_cli({"report", run, "--out", tmp / "report.html"});
  INFO("stdout: ", r.out, "\nstderr: ", r.err);
  REQUIRE(r.status == 0);
  CHECK(r.out.find("wrote " + (tmp / "report.html") + ": 1 run") != std::string::npos);
  const std::string html = slurp(tmp / "report.html");
  // The final evaluation, in the run's own table.
  CHECK(html.find("<table class=\"final\" data-run=\"1\">") != std::string::npos);
  CHECK(html.find("data-field=\"clean_acc\">81.25%<") != std::string::npos);
  CHECK(html.find("data-field=\"fgsm_acc\">43.75%<") != std::string::npos);
  CHECK(html.find("data-field=\"pgd20_acc\">31.25%<") != std::string::npos);
  CHECK(html.find("data-field=\"test_samples\">64<") != std::string::npos);
  CHECK(html.find("PGD-20") != std::string::npos);
  // The per-epoch table: both epochs' losses and validation accuracies.
  for (const char* cell : {"<td>1.8750</td>", "<td>1.4375</td>", "<td>62.50%</td>", "<td>68.75%</td>",
                           "<td>37.50%</td>", "<td>42.19%</td>"})
    CHECK_MESSAGE(html.find(cell) != std::string::npos, cell);
  // The configuration and the remaining summary fields.
  CHECK(html.find("<td class=\"text\">final_pgd_steps</td><td class=\"text\">20</td>") != std::string::npos);
  CHECK(html.find("<td class=\"text\">param_sha256</td><td class=\"text\">ab12</td>") != std::string::npos);
  // The image: one data: URI whose bytes are adversarial.png's.
  const auto uris = png_uris(html);
  REQUIRE(uris.size() == 1);
  CHECK(base64_decode(uris[0]) == slurp(run + "/adversarial.png"));
  CHECK(html.find("width=\"6\" height=\"4\"") != std::string::npos);
  // Self-contained: every src is a data: URI, every link stays on the page, no stylesheet or script file.
  CHECK(count_of(html, "src=\"") == count_of(html, "src=\"data:"));
  CHECK(count_of(html, "href=\"") == count_of(html, "href=\"#"));
  for (const char* external : {"<link", "url(", "@import", "<script src", "<iframe"})
    CHECK_MESSAGE(html.find(external) == std::string::npos, external);
  CHECK(html.find("data-images-loaded") != std::string::npos);  // what the browser test reads
}

TEST_CASE("report: strings from the files and directory names are HTML-escaped") {
  TempDir tmp("advgrad_report");
  RunSpec spec;
  spec.note = "<script>alert(1)</script>";
  spec.stop_reason = "a & b \"q\" 'x' <i>";
  spec.data = "/data/<img src=x onerror=alert(2)>";
  // A directory name with markup and a byte that is not UTF-8.
  const std::string run = write_run(tmp / "run<b>&\"'\xff", spec);
  const auto r = run_cli({"report", run, "--out", tmp / "report.html"});
  INFO("stderr: ", r.err);
  REQUIRE(r.status == 0);
  const std::string html = slurp(tmp / "report.html");
  CHECK(html.find("<script>alert") == std::string::npos);
  CHECK(html.find("&lt;script&gt;alert(1)&lt;/script&gt;") != std::string::npos);
  CHECK(html.find("a &amp; b &quot;q&quot; &#39;x&#39; &lt;i&gt;") != std::string::npos);
  CHECK(html.find("<img src=x") == std::string::npos);
  CHECK(html.find("/data/&lt;img src=x onerror=alert(2)&gt;") != std::string::npos);
  CHECK(html.find("run<b>") == std::string::npos);
  CHECK(html.find("run&lt;b&gt;&amp;&quot;&#39;\xEF\xBF\xBD") != std::string::npos);
  CHECK(html.find('\xff') == std::string::npos);
}

TEST_CASE("report: several runs share one SVG, one colour each, named in its legend and the comparison") {
  TempDir tmp("advgrad_report");
  RunSpec second;
  second.clean = 0.75, second.fgsm = 0.5, second.pgd = 0.25;
  const std::string a = write_run(tmp / "alpha"), b = write_run(tmp / "beta", second);
  const auto r = run_cli({"report", a, b, a, "--out", tmp / "report.html"});
  INFO("stderr: ", r.err);
  REQUIRE(r.status == 0);
  CHECK(r.out.find(": 3 runs") != std::string::npos);
  const std::string html = slurp(tmp / "report.html");
  REQUIRE(count_of(html, "<svg") == 1);
  const std::string svg = html.substr(html.find("<svg"), html.find("</svg>") - html.find("<svg"));
  // Three polylines per run (loss, clean, PGD), each in the run's colour.
  for (const char* colour : {"#1f77b4", "#d62728", "#2ca02c"})
    CHECK_MESSAGE(count_of(svg, "<polyline fill=\"none\" stroke=\"" + std::string(colour) + "\"") == 3, colour);
  CHECK(svg.find(">" + a + "</text>") != std::string::npos);
  CHECK(svg.find(">" + b + "</text>") != std::string::npos);
  CHECK(svg.find(">" + a + " (2)</text>") != std::string::npos);  // the same directory twice: told apart
  CHECK(svg.find(">epoch</text>") != std::string::npos);
  CHECK(svg.find(">accuracy (%)</text>") != std::string::npos);
  // Each run's own table has its own numbers.
  const size_t second_table = html.find("data-run=\"2\"");
  REQUIRE(second_table != std::string::npos);
  CHECK(html.find("data-field=\"clean_acc\">75.00%<", second_table) < html.find("data-run=\"3\""));
  CHECK(png_uris(html).size() == 3);
}

TEST_CASE("report: a run without adversarial.png is reported without it and says so") {
  TempDir tmp("advgrad_report");
  RunSpec spec;
  spec.png = false;
  const auto r = run_cli({"report", write_run(tmp / "run", spec), "--out", tmp / "report.html"});
  INFO("stderr: ", r.err);
  REQUIRE(r.status == 0);
  CHECK(r.out.find("(1 without adversarial.png)") != std::string::npos);
  const std::string html = slurp(tmp / "report.html");
  CHECK(html.find("no adversarial.png") != std::string::npos);
  CHECK(html.find("<img") == std::string::npos);
  CHECK(html.find("data-field=\"clean_acc\">81.25%<") != std::string::npos);
}

TEST_CASE("report: a run without summary.json (stopped early, still training) is reported as not finished") {
  TempDir tmp("advgrad_report");
  const std::string done = write_run(tmp / "done");
  const std::string open_run = tmp / "open";
  fs::copy(done, open_run);
  fs::remove(open_run + "/summary.json");
  const auto r = run_cli({"report", done, open_run, "--out", tmp / "report.html"});
  INFO("stderr: ", r.err);
  REQUIRE(r.status == 0);
  const std::string html = slurp(tmp / "report.html");
  CHECK(html.find("not finished: no final evaluation") != std::string::npos);  // the comparison row
  CHECK(html.find("Not finished: no summary.json") != std::string::npos);     // its own section
  // The finished run's final table is there once, the open one has none; both have their epoch tables.
  CHECK(html.find("<table class=\"final\" data-run=\"1\"") != std::string::npos);
  CHECK(html.find("<table class=\"final\" data-run=\"2\"") == std::string::npos);
  size_t epoch_tables = 0;
  for (size_t at = html.find("(metrics.jsonl)"); at != std::string::npos; at = html.find("(metrics.jsonl)", at + 1))
    ++epoch_tables;
  CHECK(epoch_tables == 2);
}

TEST_CASE("report: a missing directory or a missing, malformed or mistyped run file is one error line, exit 2") {
  TempDir tmp("advgrad_report");
  const std::string good = write_run(tmp / "good");
  check_refused({tmp / "nowhere"}, "nowhere: no such directory", tmp);
  write(tmp / "plain_file", "x");
  check_refused({tmp / "plain_file"}, "plain_file: is not a directory", tmp);
  check_refused({}, "RUN_DIR is required", tmp);

  // Each case: a copy of the good run with one file replaced (or removed), and what the message says.
  struct Case {
    std::string file, content;  // content "" = the file removed
    std::string message;
  };
  const std::vector<Case> cases = {
      {"summary.json", "{\"clean_acc\": 0.5,", "summary.json: not valid JSON (parse error at line 1"},
      {"summary.json", "[1, 2]", "summary.json: not a JSON object"},
      {"summary.json", "", ""},  // placeholder replaced below: a field of the wrong type
      {"config.json", "", "config.json: no such file"},
      {"config.json", "{\"epochs\": 2", "config.json: not valid JSON"},
      {"config.json", "\"text\"", "config.json: not a JSON object"},
      {"metrics.jsonl", "", "metrics.jsonl: no such file"},
      {"metrics.jsonl", "{\"epoch\": 1}\n", "metrics.jsonl line 1: missing field"},
      {"metrics.jsonl", "not json\n", "metrics.jsonl line 1: a metrics line is not a JSON object"},
      {"metrics.jsonl", "\n\n", "metrics.jsonl: no epoch recorded"},
      {"adversarial.png", "GIF89a not a png", "adversarial.png"},
  };
  int k = 0;
  for (Case c : cases) {
    const std::string dir = tmp / ("case" + std::to_string(k++));
    fs::copy(good, dir);
    if (c.message.empty()) {  // wrong types, from the real files with one value changed
      nlohmann::json s = nlohmann::json::parse(slurp(good + "/summary.json"));
      s["clean_acc"] = "high";
      c.content = s.dump(), c.message = "summary.json: field 'clean_acc' must be a finite number in [0.0, 1.0], got \"high\"";
    }
    if (c.content.empty())
      fs::remove(dir + "/" + c.file);
    else
      write(dir + "/" + c.file, c.content);
    CAPTURE(c.message);
    check_refused({dir}, dir + "/" + c.message, tmp);
  }

  // config.json with a field of the wrong type, and one out of range.
  for (const auto& [field, value, message] :
       std::vector<std::tuple<std::string, nlohmann::json, std::string>>{
           {"epochs", "ten", "config.json: field 'epochs' must be a whole number"},
           {"eps", nlohmann::json::array(), "config.json: field 'eps' must be a finite number"}}) {
    const std::string dir = tmp / ("config_" + field);
    fs::copy(good, dir);
    nlohmann::ordered_json j = nlohmann::ordered_json::parse(slurp(good + "/config.json"));
    j[field] = value;
    write(dir + "/config.json", j.dump());
    check_refused({dir}, dir + "/" + message, tmp);
  }

  // A PNG cut short: refused from its decoding, not embedded.
  const std::string cut = tmp / "cut_png";
  fs::copy(good, cut);
  const std::string png = slurp(good + "/adversarial.png");
  write(cut + "/adversarial.png", png.substr(0, png.size() / 2));
  check_refused({cut}, cut + "/adversarial.png", tmp);

  // One bad directory among good ones: still refused, nothing written.
  check_refused({good, tmp / "nowhere", good}, "nowhere: no such directory", tmp);
}

TEST_CASE("report: a directory `advgrad train` wrote (Fashion-MNIST, one epoch) is read as it is") {
  if (!fs::exists("/usr/share/datasets/fashion-mnist")) {
    MESSAGE("skipped: /usr/share/datasets/fashion-mnist is missing (Debian package dataset-fashion-mnist)");
    return;
  }
  TempDir tmp("advgrad_report");
  const std::string run = tmp / "run";
  const auto t = run_cli({"train", "--model", "small_cnn", "--method", "pgd", "--steps", "1", "--epochs", "1",
                          "--batch", "32", "--limit", "96", "--val-size", "32", "--test-limit", "16", "--threads",
                          "1", "--quiet", "--out", run});
  INFO("train stderr: ", t.err);
  REQUIRE(t.status == 0);
  const auto r = run_cli({"report", run, "--out", tmp / "report.html"});
  INFO("report stderr: ", r.err);
  REQUIRE(r.status == 0);
  const std::string html = slurp(tmp / "report.html");
  const nlohmann::json summary = nlohmann::json::parse(slurp(run + "/summary.json"));
  char expected[64];
  for (const char* field : {"clean_acc", "fgsm_acc", "pgd20_acc"}) {
    std::snprintf(expected, sizeof expected, "data-field=\"%s\">%.2f%%<", field, 100 * summary[field].get<double>());
    CHECK_MESSAGE(html.find(expected) != std::string::npos, expected);
  }
  CHECK(html.find("data-field=\"test_samples\">16<") != std::string::npos);
  const auto uris = png_uris(html);
  REQUIRE(uris.size() == 1);
  CHECK(base64_decode(uris[0]) == slurp(run + "/adversarial.png"));
}
