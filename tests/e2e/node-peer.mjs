// A tabmesh node in Node.js from the packed npm package (`import "tabmesh"`, its `node` entry),
// speaking the native peer's JSON-lines protocol on stdin/stdout, like crates/peer's binary:
//
//   node node-peer.mjs --relay <multiaddr> --dir <state directory>
//
// The harness copies this file and page/control.js next to a scratch install of the tarball.
// A command's `app` is a module path, read from disk.
import { readFileSync } from "node:fs";
import readline from "node:readline";
import { Node } from "tabmesh";
import { command, ready, stamp } from "./control.js";

const arg = (name) => process.argv[process.argv.indexOf(name) + 1];
const out = (line) => process.stdout.write(line + "\n");
const node = await Node.start({ relay: arg("--relay"), storage: { dir: arg("--dir") }, onEvent: (e) => out(stamp(e)) });
out(stamp(ready(node)));
for await (const line of readline.createInterface({ input: process.stdin })) {
  if (!line.trim()) continue;
  const request = JSON.parse(line);
  if (request.cmd === "quit") {
    await node.stop();
    out(stamp({ id: request.id, ok: {} }));
    break;
  }
  out(await command(node, line, request.app ? readFileSync(request.app) : undefined));
}
process.exit(0);
