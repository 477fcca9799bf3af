#!/usr/bin/env python3
"""Alert ingestion: warroom (durable, SQLite) vs Prometheus Alertmanager 0.25, same wrk script.

Four loads, 10 s each, 2 wrk threads, 16 connections: batches of 100 with repeated / new
fingerprints, single alerts with repeated / new fingerprints. Reports alerts/s (requests/s ×
batch) and each server's peak RSS. Usage:
  python3 bench/ingest.py --warroom target/release/warroom
"""
import argparse, json, os, re, shutil, subprocess, tempfile, time, urllib.request

def rss_mb(pid):
    for l in open(f"/proc/{pid}/status"):
        if l.startswith("VmHWM"):
            return round(int(l.split()[1]) / 1024, 1)

def wrk(url, batch, fresh, token, seconds):
    env = dict(os.environ, BATCH=str(batch), FRESH="1" if fresh else "0")
    if token: env["TOKEN"] = token
    out = subprocess.run(["wrk", "-t2", "-c16", f"-d{seconds}s", "-s", "bench/wrk/alerts.lua", url], env=env, capture_output=True, text=True).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    return {"alerts_per_s": round(rps * batch), "requests_per_s": round(rps), "errors": int(non2xx.group(1)) if non2xx else 0}

def wait(url):
    for _ in range(200):
        try:
            urllib.request.urlopen(url, timeout=1).read(); return
        except Exception: time.sleep(0.05)

def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--warroom", default="target/release/warroom")
    ap.add_argument("--seconds", type=int, default=10)
    a = ap.parse_args()
    work = tempfile.mkdtemp()
    env = dict(os.environ, RUST_LOG="error")
    db = f"sqlite://{work}/w.db"
    token = subprocess.check_output([a.warroom, "token", "create", "--role", "responder", "--name", "b", "--database", db], env=env, stderr=subprocess.DEVNULL).decode().strip()
    w = subprocess.Popen([a.warroom, "serve", "--database", db, "--listen", "127.0.0.1:18093"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    open(f"{work}/am.yml", "w").write("route:\n  receiver: none\nreceivers:\n- name: none\n")
    am = subprocess.Popen(["prometheus-alertmanager", f"--config.file={work}/am.yml", f"--storage.path={work}/am", "--web.listen-address=127.0.0.1:19094", "--cluster.listen-address="], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait("http://127.0.0.1:18093/healthz"); wait("http://127.0.0.1:19094/-/ready")
    res = {}
    try:
        for batch, fresh in [(100, False), (100, True), (1, False), (1, True)]:
            key = f"batch{batch}_{'new' if fresh else 'repeated'}"
            res[key] = {"warroom": wrk("http://127.0.0.1:18093", batch, fresh, token, a.seconds),
                        "alertmanager": wrk("http://127.0.0.1:19094", batch, fresh, None, a.seconds)}
            res[key]["ratio_warroom_over_alertmanager"] = round(res[key]["warroom"]["alerts_per_s"] / max(1, res[key]["alertmanager"]["alerts_per_s"]), 3)
        res["peak_rss_mb"] = {"warroom": rss_mb(w.pid), "alertmanager": rss_mb(am.pid)}
        print(json.dumps(res, indent=2))
    finally:
        w.terminate(); am.terminate(); w.wait(); am.wait(); shutil.rmtree(work, ignore_errors=True)

if __name__ == "__main__":
    main()
