// The member's Raft data key (DEK), kept as swarmkit keeps it: one random key per manager, made
// the first time the member opens with encryption, in a file beside the WAL. swarmkit wraps the
// DEK with a key-encrypting key (KEK) only when the cluster is autolocked; otherwise the KEK is
// empty and the DEK is stored as it is. shoal has no autolock yet, so the file always says
// "kek": "none"; the field is there so a wrapped key can be told apart (and refused) later.
import { posix } from "node:path";
import { diskErrorCode, type Disk } from "./disk.js";
import { DATA_KEY_BYTES, RecordCipher } from "./encryption.js";

export const DATA_KEY_FILE = "raft-dek.json";

interface DataKeyFile {
  version: 1;
  kek: "none";
  dek: string;
}

/** The cipher of the data key in `dir`, making (durably) a new key when there is none. */
export async function openDataKey(disk: Disk, dir: string): Promise<RecordCipher> {
  const path = posix.join(dir, DATA_KEY_FILE);
  let text: string | undefined;
  try {
    text = new TextDecoder().decode(await disk.readFile(path));
  } catch (e) {
    if (diskErrorCode(e) !== "ENOENT") throw e;
  }
  if (text !== undefined) return new RecordCipher(parseDataKey(text, path));
  const key = RecordCipher.generateKey();
  const file: DataKeyFile = { version: 1, kek: "none", dek: Buffer.from(key).toString("base64") };
  await disk.mkdir(dir);
  const tmp = `${path}.tmp`;
  const f = await disk.open(tmp, "create");
  try {
    await f.write(new TextEncoder().encode(JSON.stringify(file)), 0);
    await f.datasync();
  } finally {
    await f.close();
  }
  // Durable before anything is sealed with it: a WAL no key opens is a lost member.
  await disk.rename(tmp, path);
  await disk.syncDir(dir);
  return new RecordCipher(key);
}

function parseDataKey(text: string, path: string): Uint8Array {
  let v: Partial<DataKeyFile> & { kek?: unknown };
  try {
    v = JSON.parse(text) as typeof v;
  } catch {
    throw new Error(`the Raft data key file ${path} is not JSON: restore it from a backup of this manager`);
  }
  if (v.kek !== "none")
    throw new Error(
      `the Raft data key in ${path} is wrapped (kek ${JSON.stringify(v.kek)}); shoal has no autolock and cannot unlock it`,
    );
  const key = typeof v.dek === "string" ? Buffer.from(v.dek, "base64") : Buffer.alloc(0);
  if (key.length !== DATA_KEY_BYTES)
    throw new Error(
      `the Raft data key file ${path} holds no ${DATA_KEY_BYTES}-byte key: restore it from a backup`,
    );
  return new Uint8Array(key);
}
