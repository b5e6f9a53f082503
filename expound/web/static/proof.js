// Checks the record's inclusion proof in the browser, trusting nothing the server computed:
// the leaf hash from the record's bytes, the Merkle root from the audit path (RFC 6962 /
// RFC 9162 section 2.1.3.2, as expound/archive/merkle.py), the checkpoint text rebuilt from
// its fields (C2SP tlog-checkpoint, as expound/archive/checkpoint.py), its key id, and its
// Ed25519 signature under the log's public key (WebCrypto).
"use strict";

const bytesOfBase64 = (text) => Uint8Array.from(atob(text), (c) => c.charCodeAt(0));
const bytesOfHex = (hex) => Uint8Array.from(hex.match(/../g) || [], (h) => parseInt(h, 16));
const hexOf = (bytes) => Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
const base64Of = (bytes) => btoa(String.fromCharCode(...bytes));
const concat = (...parts) => {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const part of parts) { out.set(part, at); at += part.length; }
  return out;
};
const sha256 = async (bytes) => new Uint8Array(await crypto.subtle.digest("SHA-256", bytes));
const equal = (a, b) => a.length === b.length && a.every((x, i) => x === b[i]);
const nodeHash = (left, right) => sha256(concat(Uint8Array.of(1), left, right));

// The root an audit path leads to from leaf `index` of a tree of `size` leaves, or null.
async function rootFromPath(leaf, index, size, path) {
  if (!(index >= 0 && index < size)) return null;
  let fn = BigInt(index), sn = BigInt(size - 1), computed = leaf;
  for (const sibling of path) {
    if (sibling.length !== 32 || sn === 0n) return null;
    if ((fn & 1n) === 1n || fn === sn) {
      computed = await nodeHash(sibling, computed);
      while ((fn & 1n) === 0n && fn !== 0n) { fn >>= 1n; sn >>= 1n; }
    } else {
      computed = await nodeHash(computed, sibling);
    }
    fn >>= 1n; sn >>= 1n;
  }
  return sn === 0n ? computed : null;
}

function checkpointBody(cp) {
  const root = base64Of(bytesOfHex(cp.root_hash));
  const text = cp.key_id
    ? `${cp.log_id}\n${cp.size}\n${root}\ntimestamp ${cp.timestamp}\n`
    : `expound-checkpoint/v1\n${cp.log_id}\n${cp.size}\n${root}\n${cp.timestamp}\n`;
  return new TextEncoder().encode(text);
}

async function verify(data) {
  const steps = [];
  const proof = data.proof;
  const cp = proof.checkpoint;
  const record = bytesOfBase64(data.canonical_base64);
  const leaf = bytesOfHex(proof.leaf_hash);
  if (record.length > 0) {
    const computed = await sha256(concat(Uint8Array.of(0), record));
    if (!equal(computed, leaf)) {
      return [false, "the record's bytes do not hash to its leaf in the log", steps];
    }
    steps.push(`record bytes hash to leaf ${hexOf(leaf).slice(0, 16)}…`);
  } else {
    steps.push("payload expired: the leaf hash stands for it");
  }
  const path = proof.audit_path.map(bytesOfHex);
  const root = await rootFromPath(leaf, proof.leaf_index, cp.size, path);
  if (root === null || !equal(root, bytesOfHex(cp.root_hash))) {
    return [false, "the audit path does not lead to the checkpoint's root", steps];
  }
  steps.push(`audit path of ${path.length} hashes leads to root ${cp.root_hash.slice(0, 16)}… of size ${cp.size}`);
  const publicKey = bytesOfBase64(data.public_key_base64);
  if (publicKey.length !== 32) return [false, "the server published no log key", steps];
  if (cp.key_id) {
    const keyId = (await sha256(concat(new TextEncoder().encode(cp.log_id + "\n"), Uint8Array.of(1), publicKey))).slice(0, 4);
    if (hexOf(keyId) !== cp.key_id) return [false, "the checkpoint names another signing key", steps];
  }
  let key;
  try {
    key = await crypto.subtle.importKey("raw", publicKey, { name: "Ed25519" }, false, ["verify"]);
  } catch (error) {
    return [false, `this browser cannot check Ed25519 signatures (${error.name})`, steps];
  }
  const signed = await crypto.subtle.verify({ name: "Ed25519" }, key, bytesOfHex(cp.signature), checkpointBody(cp));
  if (!signed) return [false, "the checkpoint's signature does not verify under the log's key", steps];
  steps.push(`checkpoint signed by the log's Ed25519 key at ${cp.timestamp}`);
  // The key came from the server too: a key pinned in this browser (by a person who
  // compared it with the published one) catches a server that swapped key and checkpoint.
  const pinned = localStorage.getItem(PIN_PREFIX + cp.log_id);
  if (pinned !== null && pinned !== data.public_key_base64) {
    return [false, "the log's key is not the key pinned in this browser", steps];
  }
  steps.push(pinned === null ? "key as served (not pinned in this browser)" : "key pinned in this browser");
  return [true, "", steps];
}

const PIN_PREFIX = "expound-log-key:";

function offerPin(data) {
  const button = document.getElementById("pin-key");
  if (button === null || !data.proof) return;
  button.hidden = false;
  button.addEventListener("click", () => {
    localStorage.setItem(PIN_PREFIX + data.proof.checkpoint.log_id, data.public_key_base64);
    button.textContent = "pinned";
    button.disabled = true;
  });
}

async function main() {
  const data = document.getElementById("proof-data");
  if (data === null) return; // loaded on a page without a proof (the tests do)
  const status = document.getElementById("proof-status");
  const list = document.getElementById("proof-steps");
  let outcome;
  try {
    const parsed = JSON.parse(data.textContent);
    offerPin(parsed);
    outcome = await verify(parsed);
  } catch (error) {
    outcome = [false, `the proof could not be checked (${error.name}: ${error.message})`, []];
  }
  const [ok, why, steps] = outcome;
  for (const step of steps) {
    const item = document.createElement("li");
    item.textContent = step;
    list.appendChild(item);
  }
  status.textContent = ok ? "verified" : `FAILED: ${why}`;
  status.className = ok ? "verified" : "failed";
  status.dataset.outcome = ok ? "verified" : "failed";
}

main();
