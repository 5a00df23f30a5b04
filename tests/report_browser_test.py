#!/usr/bin/env python3
"""The run report in a real browser (issue #16): trains two tiny runs with `advgrad train` on a small
dataset written here, writes `advgrad report`, opens the page in headless Chromium and checks, from the
DOM Chromium dumps after the page loaded, that every image decoded (the page's script sets
<body data-images-loaded="LOADED/TOTAL">) and that each run's final-evaluation cells show the numbers of
its summary.json (read here, independently). Saves a screenshot and prints its path.

Exit status: 0 passed, 1 failed, 77 skipped (no chromium: scripts/setup.sh --browser installs Debian's).
Python standard library only."""
import argparse
import gzip
import html.parser
import json
import os
import random
import shutil
import struct
import subprocess
import sys
import tempfile
import time

SKIP = 77
CHROMIUM_TIMEOUT = 120  # seconds per Chromium start; the first one on a machine can be slow


def find_chromium():
    override = os.environ.get("ADVGRAD_CHROMIUM")
    if override:
        return override  # used as given: a wrong path fails the test instead of skipping it
    for name in ("chromium", "chromium-browser"):
        path = shutil.which(name)
        if path:
            return path
    return None


def write_idx_dataset(root, n_train, n_test, seed=3):
    """A Fashion-MNIST-shaped IDX dataset (28x28 gray, 10 classes) of random pictures, gzipped."""
    rng = random.Random(seed)
    os.makedirs(root)
    for prefix, n in (("train", n_train), ("t10k", n_test)):
        labels = bytes(i % 10 for i in range(n))
        # Each class gets a brighter band at its own rows, so a model can learn something.
        pixels = bytearray()
        for i in range(n):
            for r in range(28):
                for _ in range(28):
                    base = 200 if r // 3 == labels[i] else 30
                    pixels.append(max(0, min(255, base + rng.randint(-30, 30))))
        with gzip.open(os.path.join(root, prefix + "-images-idx3-ubyte.gz"), "wb") as f:
            f.write(struct.pack(">iiii", 2051, n, 28, 28) + bytes(pixels))
        with gzip.open(os.path.join(root, prefix + "-labels-idx1-ubyte.gz"), "wb") as f:
            f.write(struct.pack(">ii", 2049, n) + labels)


class ReportDom(html.parser.HTMLParser):
    """The body's data-images-loaded and, per <table data-run=K>, the text of its data-field cells."""

    def __init__(self):
        super().__init__()
        self.images_loaded = None
        self.img_count = 0
        self.cells = {}  # run number -> {field: text}
        self._run = None
        self._field = None

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "body":
            self.images_loaded = a.get("data-images-loaded")
        elif tag == "img":
            self.img_count += 1
        elif tag == "table" and "data-run" in a:
            self._run = int(a["data-run"])
            self.cells[self._run] = {}
        elif tag == "td" and self._run is not None and "data-field" in a:
            self._field = a["data-field"]
            self.cells[self._run][self._field] = ""

    def handle_endtag(self, tag):
        if tag == "table":
            self._run = None
        elif tag == "td":
            self._field = None

    def handle_data(self, data):
        if self._field is not None:
            self.cells[self._run][self._field] += data


def run(cmd, timeout):
    start = time.monotonic()
    p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=timeout)
    return p, time.monotonic() - start


def chromium_cmd(chromium, profile, *extra):
    return [chromium, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-extensions",
            "--disable-dev-shm-usage", "--user-data-dir=" + profile, "--virtual-time-budget=5000", *extra]


def png_size(path):
    with open(path, "rb") as f:
        head = f.read(24)
    if len(head) < 24 or head[:8] != b"\x89PNG\r\n\x1a\n":
        return None
    return struct.unpack(">II", head[16:24])


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--advgrad", required=True, help="the advgrad command")
    ap.add_argument("--artifacts", required=True, help="where report.html and the screenshot are kept")
    args = ap.parse_args()

    chromium = find_chromium()
    if chromium is None:
        print("SKIPPED: chromium is not installed (scripts/setup.sh --browser installs Debian's chromium; "
              "or set ADVGRAD_CHROMIUM to a Chromium binary)")
        return SKIP

    failures = []

    def check(ok, what):
        print(("ok:   " if ok else "FAIL: ") + what)
        if not ok:
            failures.append(what)

    os.makedirs(args.artifacts, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="advgrad_report_browser_") as tmp:
        data = os.path.join(tmp, "data")
        write_idx_dataset(data, n_train=352, n_test=32)
        runs = {"pgd": os.path.join(tmp, "run-pgd"), "natural": os.path.join(tmp, "run-natural")}
        for method, out in runs.items():
            p, secs = run([args.advgrad, "train", "--data", data, "--model", "small_cnn", "--method", method,
                           "--epochs", "2", "--batch", "32", "--val-size", "32", "--steps", "2",
                           "--threads", "1", "--quiet", "--out", out], timeout=300)
            if p.returncode != 0:
                print(p.stdout.decode(errors="replace") + p.stderr.decode(errors="replace"))
                check(False, "advgrad train --method %s exits 0" % method)
                return 1
            print("advgrad train --method %s: %.1f s" % (method, secs))
        os.remove(os.path.join(runs["natural"], "adversarial.png"))  # a run without its picture still reports

        report = os.path.join(args.artifacts, "report.html")
        p, _ = run([args.advgrad, "report", runs["pgd"], runs["natural"], "--out", report], timeout=60)
        check(p.returncode == 0, "advgrad report exits 0" +
              ("" if p.returncode == 0 else " (stderr: %s)" % p.stderr.decode(errors="replace").strip()))
        if p.returncode != 0:
            return 1
        url = "file://" + os.path.abspath(report)

        profile = os.path.join(tmp, "profile")
        try:
            p, secs = run(chromium_cmd(chromium, profile, "--dump-dom", url), timeout=CHROMIUM_TIMEOUT)
        except subprocess.TimeoutExpired:
            check(False, "chromium --dump-dom finishes within %d s" % CHROMIUM_TIMEOUT)
            return 1
        print("chromium --dump-dom: %.1f s" % secs)
        check(p.returncode == 0, "chromium --dump-dom exits 0" +
              ("" if p.returncode == 0 else " (stderr: %s)" % p.stderr.decode(errors="replace")[-400:]))
        dom = ReportDom()
        dom.feed(p.stdout.decode("utf-8", errors="replace"))

        # One image (the pgd run's grid); the natural run's section says it has none.
        check(dom.img_count == 1, "the page has 1 image (found %d)" % dom.img_count)
        check(dom.images_loaded == "1/1", "images decoded in the browser: data-images-loaded=%r, want '1/1'"
              % dom.images_loaded)

        # The final-evaluation cells against each summary.json, in the order the runs were given.
        for k, (method, out) in enumerate(runs.items(), start=1):
            with open(os.path.join(out, "summary.json")) as f:
                summary = json.load(f)
            cells = dom.cells.get(k, {})
            for field in ("clean_acc", "fgsm_acc", "pgd20_acc"):
                text = cells.get(field, "")
                try:
                    shown = float(text.strip().rstrip("%"))
                    ok = text.strip().endswith("%") and abs(shown - 100 * summary[field]) <= 0.005 + 1e-9
                except ValueError:
                    ok = False
                check(ok, "run %d (%s) %s: the page shows %r, summary.json has %r" % (k, method, field, text,
                                                                                       summary[field]))
            check(cells.get("test_samples", "").strip() == str(summary["test_samples"]),
                  "run %d (%s) test_samples: the page shows %r, summary.json has %r"
                  % (k, method, cells.get("test_samples"), summary["test_samples"]))

        screenshot = os.path.join(args.artifacts, "report_screenshot.png")
        if os.path.exists(screenshot):
            os.remove(screenshot)
        try:
            p, secs = run(chromium_cmd(chromium, profile, "--hide-scrollbars", "--window-size=1280,2400",
                                       "--screenshot=" + screenshot, url), timeout=CHROMIUM_TIMEOUT)
        except subprocess.TimeoutExpired:
            check(False, "chromium --screenshot finishes within %d s" % CHROMIUM_TIMEOUT)
            return 1
        print("chromium --screenshot: %.1f s" % secs)
        size = png_size(screenshot) if os.path.exists(screenshot) else None
        check(size == (1280, 2400), "the screenshot is a 1280x2400 PNG (got %s)" % (size,))
        print("report: " + report)
        print("screenshot: " + screenshot)

    if failures:
        print("%d check(s) failed" % len(failures))
        return 1
    print("all checks passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
