// A fast local event sink for scripts/loadtest.sh: answers every POST with 204 and counts the
// CloudEvents it got, and their distinct ids; GET answers {"received": n, "distinct": n}.
//
//   node scripts/sink.js <port>
const http = require("http");

const port = Number(process.argv[2] || 19000);
let received = 0;
const ids = new Set();

http
  .createServer((request, response) => {
    if (request.method !== "POST") {
      response.setHeader("Content-Type", "application/json");
      response.end(JSON.stringify({ received, distinct: ids.size }));
      return;
    }
    const chunks = [];
    request.on("data", (chunk) => chunks.push(chunk));
    request.on("end", () => {
      received += 1;
      const id = /"id":"([^"]+)"/.exec(Buffer.concat(chunks).toString("utf8"));
      if (id) ids.add(id[1]);
      response.statusCode = 204;
      response.end();
    });
  })
  .listen(port, "127.0.0.1");
