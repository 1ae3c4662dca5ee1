import { InvalidArgumentError } from 'commander';
import type { Config } from '../config/config.js';
import { userIdProblem, signUserToken } from '../gateway/auth.js';
import { credential } from './target.js';

export interface TokenOptions {
  /** Lifetime in ms. */
  ttl: number;
  dataDir?: string;
  aud?: string;
}

/**
 * `seckill token <userId>`: a user token the service accepts, or a refusal naming why. The user
 * id is checked with the server's own rule (userIdProblem), so no token is printed that the
 * service would answer with 401. The audience is --aud, else SECKILL_TOKEN_AUDIENCE as the
 * service reads it. Returns the token; says on stderr which secret and audience it used.
 */
export function mintToken(config: Config, userId: string, o: TokenOptions): string {
  const problem = userIdProblem(userId);
  if (problem !== null) throw new InvalidArgumentError(`user id ${JSON.stringify(userId)} refused (the service would answer 401): ${problem}`);
  const ttlSeconds = Math.ceil(o.ttl / 1000);
  if (ttlSeconds < 1) throw new InvalidArgumentError('--ttl must be at least 1s: a token must not be expired when it is printed');
  if (o.aud !== undefined && o.aud.length === 0) throw new InvalidArgumentError('--aud needs a non-empty audience');
  const audience = o.aud ?? config.tokenAudience;
  const secret = credential(config, 'userSecret', o.dataDir);
  const aud = o.aud !== undefined ? `audience ${JSON.stringify(audience)} (--aud)`
    : audience !== undefined ? `audience ${JSON.stringify(audience)} (SECKILL_TOKEN_AUDIENCE)`
      : 'no audience (a service with SECKILL_TOKEN_AUDIENCE refuses it; pass --aud)';
  process.stderr.write(`seckill: signed with the user secret from ${secret.from}; ${aud}\n`);
  return signUserToken(secret.value, userId, ttlSeconds, audience);
}
