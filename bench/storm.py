#!/usr/bin/env python3
"""Alert storm: 10,000 alerts across 100 services into warroom's /api/v2/alerts.

Checks that every service's incident gets its first page to the paging channel, that the
on-call person is paged no more than the throttle allows, and reports warroom's peak memory
(VmHWM) and wall time. Usage:
  python3 bench/storm.py --warroom target/release/warroom [--alerts 10000 --services 100]
"""
import argparse, json, os, shutil, subprocess, sys, tempfile, threading, time, urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

got = {"room": [], "ana": []}
lock = threading.Lock()

class Hook(BaseHTTPRequestHandler):
    def do_POST(self):
        v = json.loads(self.rfile.read(int(self.headers.get("content-length", 0))))
        with lock:
            got[self.path.strip("/")].append(v)
        self.send_response(200); self.end_headers()
    def log_message(self, *a): pass

def post(url, body, token):
    req = urllib.request.Request(url, data=json.dumps(body).encode(), method="POST",
                                 headers={"content-type": "application/json", "authorization": f"Bearer {token}"})
    with urllib.request.urlopen(req, timeout=60) as r: r.read()

def get(url, token):
    req = urllib.request.Request(url, headers={"authorization": f"Bearer {token}"})
    with urllib.request.urlopen(req, timeout=60) as r: return json.loads(r.read())

def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--warroom", default="target/release/warroom")
    ap.add_argument("--alerts", type=int, default=10000)
    ap.add_argument("--services", type=int, default=100)
    a = ap.parse_args()
    hook = ThreadingHTTPServer(("127.0.0.1", 0), Hook); threading.Thread(target=hook.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{hook.server_address[1]}"
    work = tempfile.mkdtemp()
    cfg = os.path.join(work, "w.toml")
    open(cfg, "w").write(f"""
[[channels]]
name = "room"
kind = "webhook"
url = "{base}/room"
secret_env = "BENCH_SECRET"
[[channels]]
name = "ana-pager"
kind = "webhook"
url = "{base}/ana"
secret_env = "BENCH_SECRET"
[routing]
page = ["room"]
[[people]]
name = "ana"
contacts = ["ana-pager"]
[[escalation_policies]]
name = "default"
[[escalation_policies.levels]]
targets = [{{ user = "ana" }}]
[paging]
policy = "default"
throttle_pages = 10
throttle_window_secs = 600
""")
    env = dict(os.environ, BENCH_SECRET="bench", RUST_LOG="error")
    db = f"sqlite://{work}/w.db"
    token = subprocess.check_output([a.warroom, "token", "create", "--role", "responder", "--name", "bench", "--database", db], env=env, stderr=subprocess.DEVNULL).decode().strip()
    w = subprocess.Popen([a.warroom, "serve", "--config", cfg, "--database", db, "--listen", "127.0.0.1:18091"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        for _ in range(200):
            try:
                urllib.request.urlopen("http://127.0.0.1:18091/readyz", timeout=1).read(); break
            except Exception: time.sleep(0.05)
        per = a.alerts // a.services
        t0 = time.time()
        batch = []
        sent = 0
        for k in range(per):
            for s in range(a.services):
                batch.append({"labels": {"alertname": f"Alert{k}", "service": f"svc-{s}", "severity": "critical"}})
                if len(batch) == 100:
                    post("http://127.0.0.1:18091/api/v2/alerts", batch, token); sent += len(batch); batch = []
        if batch:
            post("http://127.0.0.1:18091/api/v2/alerts", batch, token); sent += len(batch)
        ingest_s = time.time() - t0
        # Wait until every incident's first page reached the room, or 60 s.
        deadline = time.time() + 60
        while time.time() < deadline:
            with lock:
                if len({p.get("incident") for p in got["room"] if p.get("kind") == "page"}) >= a.services: break
            time.sleep(0.1)
        settle_s = time.time() - t0
        time.sleep(2)
        incidents = get("http://127.0.0.1:18091/api/v1/incidents?limit=500", token)["incidents"]
        hwm = [l for l in open(f"/proc/{w.pid}/status") if l.startswith("VmHWM")][0].split()[1]
        with lock:
            first_pages = len({p.get("incident") for p in got["room"] if p.get("kind") == "page"})
            ana = len([p for p in got["ana"] if p.get("kind") == "page"])
        out = {"alerts_sent": sent, "services": a.services, "incidents": len(incidents),
               "incidents_with_first_page_delivered": first_pages, "pages_to_ana": ana, "throttle": 10,
               "ingest_seconds": round(ingest_s, 2), "alerts_per_second": round(sent / ingest_s),
               "all_first_pages_seconds": round(settle_s, 2), "peak_rss_mb": round(int(hwm) / 1024, 1)}
        print(json.dumps(out, indent=2))
        ok = out["incidents"] == a.services and first_pages == a.services and ana <= 10
        sys.exit(0 if ok else 1)
    finally:
        w.terminate(); w.wait(); shutil.rmtree(work, ignore_errors=True)

if __name__ == "__main__":
    main()
