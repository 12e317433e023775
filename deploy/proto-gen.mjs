// Regenerates proto/gen/ from every .proto file in proto/ with protoc and the ts-proto plugin
// from node_modules. The output is committed, so only run this after changing a .proto file.
import { spawnSync } from "node:child_process";
import { existsSync, mkdirSync, readdirSync, rmSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const protoDir = path.join(root, "proto");
const outDir = path.join(protoDir, "gen");
const plugin = path.join(root, "node_modules", ".bin", "protoc-gen-ts_proto");

if (!existsSync(plugin)) {
  console.error(`proto-gen: ${plugin} is missing; run npm install first`);
  process.exit(1);
}

const files = readdirSync(protoDir)
  .filter((f) => f.endsWith(".proto"))
  .sort();
if (files.length === 0) {
  console.error(`proto-gen: no .proto files in ${protoDir}`);
  process.exit(1);
}

const options = [
  "outputServices=grpc-js",
  "esModuleInterop=true",
  "forceLong=number",
  "useOptionals=messages",
  "importSuffix=.js",
  "env=node",
];

// Stale files from a removed .proto must not linger.
rmSync(outDir, { recursive: true, force: true });
mkdirSync(outDir, { recursive: true });

const args = [
  `--plugin=protoc-gen-ts_proto=${plugin}`,
  `--ts_proto_out=${outDir}`,
  `--ts_proto_opt=${options.join(",")}`,
  `--proto_path=${protoDir}`,
  ...files,
];
const result = spawnSync("protoc", args, { cwd: protoDir, stdio: "inherit" });
if (result.error) {
  console.error(`proto-gen: cannot run protoc: ${result.error.message}`);
  process.exit(1);
}
if (result.status !== 0) process.exit(result.status ?? 1);
console.log(`proto-gen: ${files.join(", ")} -> ${path.relative(root, outDir)}/`);
