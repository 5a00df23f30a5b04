#include "advgrad/cli/report_html.h"

#include <set>
#include <sstream>

#include "advgrad/cli/common.h"
#include "advgrad/cli/curves_overlay.h"
#include "advgrad/data/base64.h"
#include "advgrad/data/html_text.h"
#include "advgrad/train/run_files.h"

namespace advgrad::cli {

namespace {

const char* kStyle = R"(body { font-family: sans-serif; margin: 24px; color: #222; }
h1 { font-size: 22px; } h2 { font-size: 18px; margin-top: 32px; border-bottom: 1px solid #ccc; }
h3 { font-size: 15px; margin-bottom: 6px; }
table { border-collapse: collapse; font-size: 13px; margin-bottom: 8px; }
th, td { border: 1px solid #ccc; padding: 3px 8px; text-align: right; }
th { background: #f3f3f3; } td.text, th.text { text-align: left; }
.swatch { display: inline-block; width: 12px; height: 12px; margin-right: 6px; vertical-align: middle; }
img.grid { image-rendering: pixelated; max-width: 100%; border: 1px solid #ccc; }
.missing { color: #a00; } .note { color: #666; font-size: 12px; }
)";

// Marks every image loaded or not once the page (images included) has finished loading.
const char* kImagesLoadedScript = R"(<script>
window.addEventListener('load', function () {
  var images = document.images, loaded = 0;
  for (var i = 0; i < images.length; ++i) if (images[i].complete && images[i].naturalWidth > 0) ++loaded;
  document.body.setAttribute('data-images-loaded', loaded + '/' + images.length);
});
</script>
)";

// A JSON value from a file as table text: strings as they are, everything else as JSON; escaped.
std::string value_text(const nlohmann::ordered_json& v) {
  if (v.is_string()) return html_escape(v.get<std::string>());
  return html_escape(v.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace));
}

std::string td(const std::string& escaped, const std::string& attributes = "") {
  return "<td" + (attributes.empty() ? "" : " " + attributes) + ">" + escaped + "</td>";
}

// Every field of a JSON object (config.json, the rest of summary.json) as a two-column table.
void fields_table(std::ostringstream& o, const nlohmann::ordered_json& object, const std::set<std::string>& skip = {}) {
  o << "<table class=\"fields\">\n<tr><th class=\"text\">field</th><th class=\"text\">value</th></tr>\n";
  for (auto it = object.begin(); it != object.end(); ++it) {
    if (skip.count(it.key())) continue;
    o << "<tr>" << td(html_escape(it.key()), "class=\"text\"") << td(value_text(it.value()), "class=\"text\"")
      << "</tr>\n";
  }
  o << "</table>\n";
}

std::string pgd_name(const RunRecord& r) { return "PGD-" + std::to_string(r.pgd_steps); }

void comparison_table(std::ostringstream& o, const std::vector<RunRecord>& runs) {
  o << "<table class=\"comparison\">\n<tr><th class=\"text\">run</th><th class=\"text\">model</th>"
       "<th class=\"text\">method</th><th>eps</th><th>epochs</th><th>clean</th><th>FGSM</th><th>PGD</th>"
       "<th>test samples</th></tr>\n";
  for (size_t i = 0; i < runs.size(); ++i) {
    const RunRecord& r = runs[i];
    o << "<tr>"
      << td("<span class=\"swatch\" style=\"background:" + run_colour(i) + "\"></span><a href=\"#run-" +
                std::to_string(i + 1) + "\">" + html_escape(r.label) + "</a>",
            "class=\"text\"")
      << td(html_escape(r.model), "class=\"text\"") << td(html_escape(r.method), "class=\"text\"")
      << td(html_escape(eps_text(r.eps))) << td(std::to_string(r.history.size()));
    if (r.finished)
      o << td(percent_text(r.clean_acc)) << td(percent_text(r.fgsm_acc))
        << td(percent_text(r.pgd_acc) + " (" + pgd_name(r) + ")") << td(std::to_string(r.test_samples));
    else
      o << "<td colspan=\"4\" class=\"text\">not finished: no final evaluation</td>";
    o << "</tr>\n";
  }
  o << "</table>\n";
}

void final_table(std::ostringstream& o, const RunRecord& r, size_t k) {
  if (!r.finished) {
    o << "<p class=\"note\" data-run=\"" << k << "\">Not finished: no " << kSummaryFile
      << " (stopped early with --stop-after, or still training), so no final evaluation.</p>\n";
    return;
  }
  o << "<table class=\"final\" data-run=\"" << k << "\">\n<tr><th>clean</th><th>FGSM</th><th>" << pgd_name(r)
    << "</th><th>test samples</th></tr>\n<tr>" << td(percent_text(r.clean_acc), "data-field=\"clean_acc\"")
    << td(percent_text(r.fgsm_acc), "data-field=\"fgsm_acc\"") << td(percent_text(r.pgd_acc), "data-field=\"pgd20_acc\"")
    << td(std::to_string(r.test_samples), "data-field=\"test_samples\"") << "</tr>\n</table>\n";
  o << "<p class=\"note\">On the test split, at eps " << html_escape(eps_text(r.eps)) << " (from " << kSummaryFile << ").</p>\n";
}

void epoch_table(std::ostringstream& o, const RunRecord& r) {
  bool ema = false;
  for (const auto& m : r.history) ema = ema || m.ema_val_pgd_acc >= 0;
  o << "<table class=\"epochs\">\n<tr><th>epoch</th><th class=\"text\">method</th><th>train loss</th>"
       "<th>train clean acc</th><th>train adv acc</th><th>val clean</th><th>val PGD</th>";
  if (ema) o << "<th>EMA val clean</th><th>EMA val PGD</th>";
  o << "<th>lr</th><th>eps</th><th>seconds</th><th class=\"text\">best</th><th class=\"text\">note</th></tr>\n";
  // What the training accuracies are of, as a tooltip (metrics written before issue 13 do not say).
  auto of = [](const std::string& what) { return what.empty() ? std::string() : "title=\"of: " + html_escape(what) + "\""; };
  for (const auto& m : r.history) {
    o << "<tr>" << td(std::to_string(m.epoch)) << td(html_escape(m.method), "class=\"text\"")
      << td(fixed(m.train_loss, 4)) << td(percent_text(m.train_clean_acc), of(m.train_clean_acc_of))
      << td(percent_text(m.train_adv_acc), of(m.train_adv_acc_of)) << td(percent_text(m.val_clean_acc))
      << td(percent_text(m.val_pgd_acc));
    if (ema)
      o << td(m.ema_val_pgd_acc >= 0 ? percent_text(m.ema_val_clean_acc) : "")
        << td(m.ema_val_pgd_acc >= 0 ? percent_text(m.ema_val_pgd_acc) : "");
    o << td(number_text(m.lr)) << td(html_escape(eps_text(m.eps))) << td(fixed(m.seconds, 1))
      << td(m.best_from.empty() ? "" : "best (" + html_escape(m.best_from) + ")", "class=\"text\"")
      << td(html_escape(m.note), "class=\"text\"") << "</tr>\n";
  }
  o << "</table>\n";
}

void adversarial_grid(std::ostringstream& o, const RunRecord& r) {
  if (r.png.empty()) {
    o << "<p class=\"missing\">no " << kAdversarialFile << " in this run directory</p>\n";
    return;
  }
  o << "<img class=\"grid\" src=\"data:image/png;base64," << base64_encode(r.png) << "\" width=\"" << r.png_width
    << "\" height=\"" << r.png_height << "\" alt=\"" << kAdversarialFile << " of " << html_escape(r.label) << "\">\n";
  o << "<p class=\"note\">Rows: clean samples, their " << pgd_name(r)
    << " adversarial examples, the perturbation (magnified around gray). Frames: red fooled, gray wrong "
       "already, green still right; below each column the label / clean / adversarial class.</p>\n";
}

// The summary fields the evaluation tables already show.
const std::set<std::string> kShownSummaryFields = {"clean_acc", "fgsm_acc", "pgd20_acc", "pgd_steps", "test_samples"};

}  // namespace

std::string percent_text(double fraction) { return fixed(100 * fraction, 2) + "%"; }

std::string report_html(const std::vector<RunRecord>& runs, const std::string& version) {
  std::ostringstream o;
  o << "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n<title>advgrad report: "
    << runs.size() << " run" << (runs.size() == 1 ? "" : "s") << "</title>\n<style>\n" << kStyle << "</style>\n</head>\n";
  o << "<body data-images-loaded=\"pending\">\n<h1>advgrad report</h1>\n<p class=\"note\">Written by advgrad "
    << html_escape(version) << " from " << runs.size() << " run director" << (runs.size() == 1 ? "y" : "ies")
    << ". Self-contained: nothing on this page is fetched from elsewhere.</p>\n";
  o << "<h2>Final evaluation</h2>\n";
  comparison_table(o, runs);
  o << "<h2>Training curves</h2>\n";
  std::vector<CurveRun> curves;
  for (const auto& r : runs) curves.push_back({r.label, r.history});
  o << overlay_curves_svg(curves);
  for (size_t i = 0; i < runs.size(); ++i) {
    const RunRecord& r = runs[i];
    o << "<section class=\"run\" id=\"run-" << i + 1 << "\">\n<h2><span class=\"swatch\" style=\"background:"
      << run_colour(i) << "\"></span>" << html_escape(r.label) << "</h2>\n";
    o << "<h3>Final evaluation</h3>\n";
    final_table(o, r, i + 1);
    o << "<h3>Adversarial examples</h3>\n";
    adversarial_grid(o, r);
    o << "<h3>Per epoch (" << kMetricsFile << ")</h3>\n";
    epoch_table(o, r);
    o << "<h3>Configuration (" << kConfigFile << ")</h3>\n";
    fields_table(o, r.config);
    if (r.finished) {
      o << "<h3>More of " << kSummaryFile << "</h3>\n";
      fields_table(o, r.summary, kShownSummaryFields);
    }
    o << "</section>\n";
  }
  o << kImagesLoadedScript << "</body>\n</html>\n";
  return o.str();
}

}  // namespace advgrad::cli
