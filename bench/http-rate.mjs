// For bench/cluster's mesh_ratio: HTTP GETs of URL for SECONDS, CONCURRENCY at a time, each on
// a new connection (no keep-alive, as busybox httpd answers HTTP/1.0 and closes), after an
// untimed warm-up of half a second. Run it where the URL is to be reached from, e.g.
// `nsenter --net=/run/netns/<host> node bench/http-rate.mjs http://10.1.0.3:8080/ 2 4`.
// An optional fourth argument FROM-TO binds each request to the next local port of that range
// (bench/cluster's direct reference uses ports below the ephemeral range, see there why).
// Prints one JSON line: {"ok":N,"errors":N,"seconds":S,"rps":N,"firstError":"...", "p50Ms":..,
// "p99Ms":..,"maxMs":..} (latencies of the timed requests).
import { request } from "node:http";

const [url, secondsArg, concurrencyArg, portsArg] = process.argv.slice(2);
const seconds = Number(secondsArg ?? 2);
const concurrency = Number(concurrencyArg ?? 4);
const [portFrom, portTo] = (portsArg ?? "").split("-").map(Number);
if (
  !url ||
  !(seconds > 0) ||
  !(concurrency > 0) ||
  (portsArg !== undefined && !(portFrom > 0 && portTo >= portFrom))
)
  throw new Error("usage: http-rate.mjs URL SECONDS CONCURRENCY [FROM-TO local ports]");
let nextPort = portFrom;
function localPort() {
  if (portsArg === undefined) return undefined;
  const p = nextPort;
  nextPort = p >= portTo ? portFrom : p + 1;
  return p;
}

/** Latencies of the timed phase's successful requests, ms. */
let lat;
function get() {
  const t0 = process.hrtime.bigint();
  return new Promise((ok) => {
    const req = request(url, { agent: false, timeout: 3000, localPort: localPort() }, (res) => {
      res.resume();
      res.on("end", () => {
        lat?.push(Number(process.hrtime.bigint() - t0) / 1e6);
        ok(res.statusCode === 200 ? undefined : `status ${res.statusCode}`);
      });
      res.on("error", (e) => ok(e.message));
    });
    req.on("timeout", () => req.destroy(new Error("timed out after 3 s")));
    req.on("error", (e) => ok(e.message));
    req.end();
  });
}

async function phase(ms) {
  const end = Date.now() + ms;
  let okN = 0;
  let errors = 0;
  let firstError;
  const t0 = process.hrtime.bigint();
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (Date.now() < end) {
        const err = await get();
        if (err === undefined) okN++;
        else {
          errors++;
          firstError ??= err;
        }
      }
    }),
  );
  return { ok: okN, errors, seconds: Number(process.hrtime.bigint() - t0) / 1e9, firstError };
}

await phase(500);
lat = [];
const r = await phase(seconds * 1000);
lat.sort((a, b) => a - b);
const p = (q) => +(lat[Math.min(lat.length - 1, Math.floor(q * lat.length))] ?? 0).toFixed(2);
console.log(
  JSON.stringify({ ...r, rps: Math.round(r.ok / r.seconds), p50Ms: p(0.5), p99Ms: p(0.99), maxMs: p(1) }),
);
