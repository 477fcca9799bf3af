#!/usr/bin/env python3
"""POST-to-page latency: warroom vs Prometheus Alertmanager, same receiver, same run.

warroom (alerts): POST /api/v2/alerts with a critical alert for a new service each trial ->
alerts committed -> Sev1 incident declared with its outbox row (SQLite, synchronous=FULL) ->
dispatcher -> signed webhook. warroom (declare): POST /api/v1/incidents (Sev1) -> the same path
from the incident on. Alertmanager: POST /api/v2/alerts (a new alert group each trial,
group_wait 0s, in memory) -> webhook. Latency is from just before the POST is sent to the
moment the receiver has read the webhook body. Usage:
  python3 bench/page_latency.py --warroom target/release/warroom --trials 200
"""
import argparse, json, os, shutil, statistics, subprocess, sys, tempfile, threading, time, urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

arrivals = {}
cond = threading.Condition()

class Hook(BaseHTTPRequestHandler):
    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("content-length", 0)))
        t = time.perf_counter()
        v = json.loads(body)
        keys = [a["labels"]["alertname"] for a in v.get("alerts", [])] if "alerts" in v else [v.get("title", "").split(" - ", 1)[-1].split(":")[0]]
        with cond:
            for k in keys:
                arrivals.setdefault(k, t)
            cond.notify_all()
        self.send_response(200); self.end_headers()
    def log_message(self, *a): pass

def wait_for(key, timeout=10):
    end = time.perf_counter() + timeout
    with cond:
        while key not in arrivals:
            left = end - time.perf_counter()
            if left <= 0: return None
            cond.wait(left)
        return arrivals[key]

def post(url, body, token=None):
    req = urllib.request.Request(url, data=json.dumps(body).encode(), method="POST", headers={"content-type": "application/json"})
    if token: req.add_header("authorization", f"Bearer {token}")
    with urllib.request.urlopen(req, timeout=10) as r: r.read()

def wait_http(url, timeout=20):
    end = time.time() + timeout
    while time.time() < end:
        try:
            urllib.request.urlopen(url, timeout=1).read(); return
        except Exception: time.sleep(0.05)
    sys.exit(f"{url} did not come up")

def pct(xs, p):
    xs = sorted(xs); return xs[min(len(xs) - 1, int(round(p / 100 * (len(xs) - 1))))]

def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--warroom", default="target/release/warroom")
    ap.add_argument("--alertmanager", default=shutil.which("prometheus-alertmanager") or "/usr/bin/prometheus-alertmanager")
    ap.add_argument("--trials", type=int, default=200)
    a = ap.parse_args()
    hook = ThreadingHTTPServer(("127.0.0.1", 0), Hook); threading.Thread(target=hook.serve_forever, daemon=True).start()
    hook_url = f"http://127.0.0.1:{hook.server_address[1]}"
    work = tempfile.mkdtemp()
    procs = []
    try:
        # warroom
        cfg = os.path.join(work, "w.toml")
        open(cfg, "w").write(f'[[channels]]\nname = "pager"\nkind = "webhook"\nurl = "{hook_url}/w"\nsecret_env = "BENCH_SECRET"\n[routing]\npage = ["pager"]\n')
        env = dict(os.environ, BENCH_SECRET="bench", RUST_LOG="warn")
        db = f"sqlite://{work}/w.db"
        token = subprocess.check_output([a.warroom, "token", "create", "--role", "responder", "--name", "bench", "--database", db], env=env, stderr=subprocess.DEVNULL).decode().strip()
        w = subprocess.Popen([a.warroom, "serve", "--config", cfg, "--database", db, "--listen", "127.0.0.1:18090"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL); procs.append(w)
        # Alertmanager
        amcfg = os.path.join(work, "am.yml")
        open(amcfg, "w").write(f"route:\n  receiver: hook\n  group_by: ['alertname']\n  group_wait: 0s\n  group_interval: 1s\n  repeat_interval: 1h\nreceivers:\n- name: hook\n  webhook_configs:\n  - url: {hook_url}/am\n    send_resolved: false\n")
        am = subprocess.Popen([a.alertmanager, f"--config.file={amcfg}", f"--storage.path={work}/am", "--web.listen-address=127.0.0.1:19093", "--cluster.listen-address="], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL); procs.append(am)
        wait_http("http://127.0.0.1:18090/readyz"); wait_http("http://127.0.0.1:19093/-/ready")
        res = {"warroom_alerts": [], "warroom_declare": [], "alertmanager": []}
        for i in range(a.trials + 10):  # the first 10 of each warm up and are dropped
            name = f"wa{i}"
            t0 = time.perf_counter()
            post("http://127.0.0.1:18090/api/v2/alerts", [{"labels": {"alertname": name, "service": f"svc-{i}", "severity": "critical"}}], token)
            t = wait_for(name)
            if i >= 10 and t: res["warroom_alerts"].append((t - t0) * 1000)
            name = f"wd{i}"
            t0 = time.perf_counter()
            post("http://127.0.0.1:18090/api/v1/incidents", {"service": f"dsvc-{i}", "summary": name, "severity": 1}, token)
            t = wait_for(name)
            if i >= 10 and t: res["warroom_declare"].append((t - t0) * 1000)
            name = f"am{i}"
            t0 = time.perf_counter()
            post("http://127.0.0.1:19093/api/v2/alerts", [{"labels": {"alertname": name, "severity": "critical"}}])
            t = wait_for(name)
            if i >= 10 and t: res["alertmanager"].append((t - t0) * 1000)
        out = {}
        for k, xs in res.items():
            out[k] = {"n": len(xs), "p50_ms": round(statistics.median(xs), 2), "p99_ms": round(pct(xs, 99), 2), "max_ms": round(max(xs), 2)}
        for k in ("warroom_alerts", "warroom_declare"):
            out[f"ratio_p50_{k}_over_alertmanager"] = round(out[k]["p50_ms"] / out["alertmanager"]["p50_ms"], 2)
            out[f"ratio_p99_{k}_over_alertmanager"] = round(out[k]["p99_ms"] / out["alertmanager"]["p99_ms"], 2)
        print(json.dumps(out, indent=2))
    finally:
        for p in procs: p.terminate()
        for p in procs: p.wait()
        shutil.rmtree(work, ignore_errors=True)

if __name__ == "__main__":
    main()
