// The scale run of scripts/scale.sh: a sink and a caller in one Node process (no packages).
//
// Bob registers his phone and subscribes this process's sink to the session-status events of
// his calls; he places CALLS calls to the ten built-in test numbers in turn (CONCURRENCY at a
// time, through the replicas in turn), so that all are live at once; the sink records each
// call's statuses (copies of one event, same id, counted once). Then it waits until every call
// has reached the end its number's script says, checks each call's whole sequence, and prints:
// the calls and events, how many sequences were right, the resident memory per live call
// (service processes, and Redis's used_memory when REDIS_PORT is set), and how late the timers
// fired (p50, p99, max bucket) from the replicas' camara_webrtc_timer_lateness_seconds.
//
// Environment: BASES (comma-separated replica URLs), SERVICE_PIDS (their process ids, same order),
// BOB (a 3-legged token for tel:+17085854000 with registration, subscription and session
// scopes), CALLS, CONCURRENCY, SINK_PORT, SETTLE_S (the longest a script runs, in s),
// REDIS_PORT (optional).
const http = require("http");
const fs = require("fs");
const net = require("net");

const BASES = process.env.BASES.split(",");
const PIDS = (process.env.SERVICE_PIDS || "").split(",").filter(Boolean);
const BOB = process.env.BOB;
const CALLS = Number(process.env.CALLS || 10000);
const CONCURRENCY = Number(process.env.CONCURRENCY || 64);
const SINK_PORT = Number(process.env.SINK_PORT || 19001);
const SETTLE_S = Number(process.env.SETTLE_S || 120);
const REDIS_PORT = process.env.REDIS_PORT;
const PREFIX = "org.camaraproject.webrtc-events.v0";
const OFFER =
  "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\nm=audio 9 RTP/SAVPF 111\r\n" +
  "a=rtpmap:111 opus/48000/2\r\na=fingerprint:sha-256 " +
  "AB:CD:EF:01:23:45:67:89:AB:CD:EF:01:23:45:67:89:AB:CD:EF:01:23:45:67:89:AB:CD:EF:01:23:45:67:89" +
  "\r\na=setup:actpass\r\na=mid:0\r\na=ice-ufrag:abcd\r\na=ice-pwd:abcdefghijklmnopqrstuvwx\r\n";

// What each test number's caller hears (DESIGN §12), with a no-answer time under 5 s scaled.
const HEARD = [
  ["Ringing", "Connected"],
  ["Busy"],
  ["Ringing", "Declined"],
  ["Ringing", "NoAnswer"],
  ["NotReachable"],
  ["Failed"],
  ["Connected", "Terminated"],
  ["Connected", "Hold", "Resume"],
  ["Waiting", "Ringing", "Connected"],
  ["InProgress", "Connected"],
];

const agent = new http.Agent({ keepAlive: true, maxSockets: CONCURRENCY });

function request(method, url, body, headers = {}) {
  return new Promise((resolve, reject) => {
    const data = body === undefined ? undefined : JSON.stringify(body);
    const req = http.request(
      url,
      {
        method,
        agent,
        headers: {
          ...(data ? { "Content-Type": "application/json" } : {}),
          ...headers,
        },
      },
      (res) => {
        const chunks = [];
        res.on("data", (c) => chunks.push(c));
        res.on("end", () => {
          const text = Buffer.concat(chunks).toString("utf8");
          resolve({ status: res.statusCode, text });
        });
      },
    );
    req.on("error", reject);
    if (data) req.write(data);
    req.end();
  });
}

// The sink: statuses by session, each event once.
const seen = new Set();
const heard = new Map();
let events = 0;
const sink = http.createServer((req, res) => {
  const chunks = [];
  req.on("data", (c) => chunks.push(c));
  req.on("end", () => {
    res.statusCode = 204;
    res.end();
    const event = JSON.parse(Buffer.concat(chunks).toString("utf8"));
    if (seen.has(event.id)) return;
    seen.add(event.id);
    events += 1;
    const data = event.data;
    const list = heard.get(data.mediaSessionId) || [];
    list.push([data.sequenceNumber, data.status]);
    heard.set(data.mediaSessionId, list);
  });
});

const rss = () =>
  PIDS.reduce((sum, pid) => {
    const status = fs.readFileSync(`/proc/${pid}/status`, "utf8");
    return sum + Number(/VmRSS:\s+(\d+)/.exec(status)[1]) * 1024;
  }, 0);

function redisUsedMemory() {
  if (!REDIS_PORT) return Promise.resolve(0);
  return new Promise((resolve, reject) => {
    const socket = net.connect(Number(REDIS_PORT), "127.0.0.1");
    let text = "";
    socket.on("data", (d) => {
      text += d.toString("utf8");
      const m = /used_memory:(\d+)/.exec(text);
      if (m) {
        socket.end();
        resolve(Number(m[1]));
      }
    });
    socket.on("error", reject);
    socket.write("INFO memory\r\n");
  });
}

// p-th quantile from Prometheus buckets summed over the replicas: the upper bound of the
// bucket it falls in.
async function lateness() {
  const buckets = new Map();
  let fired = 0;
  for (const base of BASES) {
    const { text } = await request("GET", `${base}/metrics`);
    for (const line of text.split("\n")) {
      const b = /^camara_webrtc_timer_lateness_seconds_bucket\{kind="[a-z_]+",le="([^"]+)"\} (\d+)/.exec(line);
      if (b) buckets.set(b[1], (buckets.get(b[1]) || 0) + Number(b[2]));
      const f = /^camara_webrtc_timers_fired_total\{kind="[a-z_]+"\} (\d+)/.exec(line);
      if (f) fired += Number(f[1]);
    }
  }
  const sorted = [...buckets.entries()]
    .map(([le, n]) => [le === "+Inf" ? Infinity : Number(le), n])
    .sort((a, b) => a[0] - b[0]);
  const total = sorted.length ? sorted[sorted.length - 1][1] : 0;
  const quantile = (q) => sorted.find(([, n]) => n >= q * total)?.[0];
  const ms = (s) => (s === Infinity ? "> 60000" : `<= ${Math.round(s * 1000)}`);
  return { fired, p50: ms(quantile(0.5)), p99: ms(quantile(0.99)), max: ms(quantile(1)) };
}

async function main() {
  await new Promise((resolve) => sink.listen(SINK_PORT, "127.0.0.1", resolve));
  const auth = { Authorization: `Bearer ${BOB}` };
  const registered = await request(
    "POST",
    `${BASES[0]}/webrtc-registration/vwip/sessions`,
    { deviceId: "7d444840-9dc0-11d1-b245-5ffdce74fad2" },
    auth,
  );
  const registration = JSON.parse(registered.text).registrationId;
  const subscribed = await request(
    "POST",
    `${BASES[0]}/webrtc-events/vwip/subscriptions`,
    {
      protocol: "HTTP",
      sink: `http://127.0.0.1:${SINK_PORT}/events`,
      types: [`${PREFIX}.session-status`],
      config: { subscriptionDetail: { registrationId: registration } },
    },
    auth,
  );
  if (subscribed.status !== 201) throw new Error(`subscription: ${subscribed.text}`);
  const before = { rss: rss(), redis: await redisUsedMemory() };

  const numberOf = new Map();
  let next = 0;
  const started = Date.now();
  async function caller() {
    while (next < CALLS) {
      const i = next++;
      const n = i % 10;
      const placed = await request(
        "POST",
        `${BASES[i % BASES.length]}/webrtc/sessions`,
        {
          originatorAddress: "tel:+17085854000",
          receiverAddress: `tel:+120255501${String(n).padStart(2, "0")}`,
          offer: { sdp: OFFER },
        },
        { ...auth, registrationId: registration },
      );
      if (placed.status !== 201) throw new Error(`call ${i}: ${placed.status} ${placed.text}`);
      numberOf.set(JSON.parse(placed.text).mediaSessionId, n);
    }
  }
  await Promise.all(Array.from({ length: CONCURRENCY }, caller));
  const placing = (Date.now() - started) / 1000;
  // Every call is live now (the earliest step of any script comes later than placing took).
  const live = { rss: rss(), redis: await redisUsedMemory() };

  const expected = CALLS / 10 * HEARD.reduce((n, h) => n + h.length, 0);
  const deadline = Date.now() + SETTLE_S * 1000;
  while (events < expected && Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, 250));
  }
  await new Promise((r) => setTimeout(r, 1000));
  let right = 0;
  const wrong = [];
  for (const [id, n] of numberOf) {
    const got = (heard.get(id) || []).sort((a, b) => a[0] - b[0]).map(([, s]) => s);
    if (JSON.stringify(got) === JSON.stringify(HEARD[n])) right += 1;
    else if (wrong.length < 5) wrong.push(`${id.slice(0, 8)} to ...010${n}: ${got.join(",")}`);
  }
  const timers = await lateness();
  const perCall = (a, b) => Math.round((b - a) / CALLS);
  console.log(`calls placed: ${CALLS} in ${placing.toFixed(1)} s through ${BASES.length} replica(s)`);
  console.log(`events at the sink: ${events} of ${expected} (distinct ids)`);
  console.log(`calls whose whole sequence was right: ${right} of ${CALLS}`);
  for (const w of wrong) console.log(`  wrong: ${w}`);
  console.log(`timers fired: ${timers.fired}; lateness p50 ${timers.p50} ms, p99 ${timers.p99} ms, max ${timers.max} ms`);
  console.log(`memory per live call: service ${perCall(before.rss, live.rss)} bytes` +
    (REDIS_PORT ? `, redis ${perCall(before.redis, live.redis)} bytes` : ""));
  process.exit(right === CALLS && events === expected ? 0 : 1);
}

main().catch((e) => {
  console.error(e);
  process.exit(2);
});
