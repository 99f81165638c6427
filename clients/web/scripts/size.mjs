// Prints the built client's size, gzipped: what the first page loads
// (index.html, its script and style) and everything in dist/ (the parts
// loaded on demand too), and fails above the budget of 500 KB for the whole.
import { readdirSync, readFileSync, statSync } from "node:fs";
import { join } from "node:path";
import { gzipSync } from "node:zlib";

const BUDGET = 500 * 1024;
const dist = new URL("../dist/", import.meta.url).pathname;

function files(dir) {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    return statSync(path).isDirectory() ? files(path) : [path];
  });
}

const gz = (path) => gzipSync(readFileSync(path), { level: 9 }).length;
const all = files(dist).filter((p) => /\.(js|css|html|svg)$/.test(p));
const html = readFileSync(join(dist, "index.html"), "utf8");
const first = all.filter((p) => p.endsWith("index.html") || html.includes(p.slice(dist.length)));
const kb = (n) => `${(n / 1024).toFixed(1)} KB`;
const firstTotal = first.reduce((n, p) => n + gz(p), 0);
const total = all.reduce((n, p) => n + gz(p), 0);
console.log(`web client, gzipped: first page ${kb(firstTotal)} (${first.length} files), whole client ${kb(total)} (${all.length} files), budget ${kb(BUDGET)}`);
if (total > BUDGET) {
  console.error(`the built client is over its budget by ${kb(total - BUDGET)}`);
  process.exit(1);
}
