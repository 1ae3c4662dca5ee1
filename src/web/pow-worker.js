// The sale page's proof of work (docs/challenges.md), off the page's thread: finds a decimal nonce
// such that SHA-256 of the UTF-8 text `<challenge>:<nonce>` starts with `bits` zero bits.
// In: { challenge: string, bits: number }. Out: { nonce: string, tries: number, ms: number }.
// Hashes go to crypto.subtle in batches: one await per batch, not per hash (the browser runs a
// batch's digests back to back). `digest` copies its input when called, so one buffer serves.

/** Digests in flight per batch. */
const BATCH = 256;

/** @param {Uint8Array} d @param {number} bits */
function enoughZeros(d, bits) {
  let i = 0;
  for (; bits >= 8; bits -= 8, i++) if (d[i] !== 0) return false;
  return bits === 0 || d[i] >> (8 - bits) === 0;
}

/**
 * @param {string} challenge
 * @param {number} bits
 * @returns {Promise<{ nonce: string, tries: number }>}
 */
async function solve(challenge, bits) {
  // crypto.subtle exists only on secure pages (https, or localhost).
  if (!globalThis.crypto?.subtle) throw new Error('This check needs the page over https.');
  const prefix = new TextEncoder().encode(`${challenge}:`);
  // The prefix, then up to 16 ASCII digits.
  const buf = new Uint8Array(prefix.length + 16);
  buf.set(prefix);
  for (let start = 0; ; start += BATCH) {
    /** @type {Promise<ArrayBuffer>[]} */
    const pending = [];
    for (let n = start; n < start + BATCH; n++) {
      const digits = String(n);
      for (let j = 0; j < digits.length; j++) buf[prefix.length + j] = digits.charCodeAt(j);
      pending.push(crypto.subtle.digest('SHA-256', buf.subarray(0, prefix.length + digits.length)));
    }
    const digests = await Promise.all(pending);
    for (let k = 0; k < digests.length; k++) {
      if (enoughZeros(new Uint8Array(digests[k]), bits)) return { nonce: String(start + k), tries: start + k + 1 };
    }
  }
}

/** The worker's own scope: `postMessage` without a target origin. */
const scope = /** @type {{ postMessage(message: unknown): void, onmessage: ((e: MessageEvent) => void) | null }} */ (/** @type {unknown} */ (self));

/** @param {MessageEvent} e */
scope.onmessage = (e) => {
  const { challenge, bits } = /** @type {{ challenge: string, bits: number }} */ (e.data);
  const t0 = performance.now();
  solve(challenge, bits).then(
    (r) => scope.postMessage({ ...r, ms: Math.round(performance.now() - t0) }),
    (err) => scope.postMessage({ error: String(err) }),
  );
};
