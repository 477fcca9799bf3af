#!/usr/bin/env python3
"""Probing cost: warroom's prober vs prometheus-blackbox-exporter, same local target, same run.

warroom: the worker crate's `probe_bench` example in burst mode (64 concurrent check loops).
blackbox_exporter: its /probe endpoint (module http_2xx) driven by wrk with 64 connections.
For both: probes/s and CPU seconds of the prober process alone (from /proc/<pid>/stat) per
1,000 probes. Usage (after `cargo build --release -p warroom-worker --example probe_bench`):
  python3 bench/probing.py --seconds 10
"""
import argparse, json, os, re, subprocess, time

TICKS = os.sysconf("SC_CLK_TCK")

def cpu(pid):
    f = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    return (int(f[11]) + int(f[12])) / TICKS

def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bench", default="target/release/examples/probe_bench")
    ap.add_argument("--seconds", type=int, default=10)
    a = ap.parse_args()
    target = subprocess.Popen([a.bench, "--serve"], stdout=subprocess.PIPE, text=True)
    addr = target.stdout.readline().strip()
    url = f"http://{addr}/health"
    try:
        out = subprocess.run([a.bench, "--mode", "burst", "--seconds", str(a.seconds), "--concurrency", "64", "--url", url],
                             capture_output=True, text=True, check=True).stdout
        grab = lambda pat: re.search(pat, out).group(1)
        w = {"probes": int(grab(r"probes\s+(\d+)")), "probes_per_s": int(grab(r"probes/s\s+(\d+)")),
             "cpu_s": float(grab(r"cpu seconds\s+([\d.]+)")), "cpu_ms_per_probe": float(grab(r"cpu ms / probe\s+([\d.]+)"))}
        open("/tmp/bb.yml", "w").write("modules:\n  http_2xx:\n    prober: http\n    timeout: 5s\n")
        bb = subprocess.Popen(["prometheus-blackbox-exporter", "--config.file=/tmp/bb.yml", "--web.listen-address=127.0.0.1:19115"],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(1.5)
        c0 = cpu(bb.pid)
        r = subprocess.run(["wrk", "-t2", "-c64", f"-d{a.seconds}s", f"http://127.0.0.1:19115/probe?target={url}&module=http_2xx"],
                           capture_output=True, text=True).stdout
        c1 = cpu(bb.pid)
        bb.terminate(); bb.wait()
        total = int(re.search(r"(\d+) requests in", r).group(1))
        b = {"probes": total, "probes_per_s": round(total / a.seconds), "cpu_s": round(c1 - c0, 2),
             "cpu_ms_per_probe": round((c1 - c0) * 1000 / total, 4)}
        ratio = round(b["cpu_ms_per_probe"] / w["cpu_ms_per_probe"], 1)
        print(json.dumps({"warroom": w, "blackbox_exporter": b, "cpu_per_probe_blackbox_over_warroom": ratio}, indent=2))
    finally:
        target.terminate()

if __name__ == "__main__":
    main()
