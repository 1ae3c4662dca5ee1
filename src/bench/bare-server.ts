// Baseline: the ceiling of any Node HTTP route on this machine — node:http answering fixed JSON.
import http from 'node:http';

const body = JSON.stringify({ error: { code: 'sold_out', message: 'Sold out.' } });
const server = http.createServer((req, res) => {
  req.resume();
  req.on('end', () => {
    res.writeHead(200, { 'content-type': 'application/json; charset=utf-8', 'content-length': Buffer.byteLength(body) });
    res.end(body);
  });
});
server.listen(Number(process.env.PORT ?? 0), '127.0.0.1', () => {
  const a = server.address();
  process.stdout.write(`listening ${typeof a === 'object' && a ? a.port : ''}\n`);
});
