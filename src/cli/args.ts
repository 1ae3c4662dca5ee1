import { InvalidArgumentError, type Command } from 'commander';

/**
 * A price in currency units, as the dashboard takes it: digits with at most two decimals after a
 * dot ("49", "49.9", "49.00"). Returns cents. Anything else (a comma, three decimals, a sign, a
 * currency symbol) is refused rather than guessed at.
 */
export function parsePrice(text: string): number {
  const t = text.trim();
  const m = /^(\d{1,10})(?:\.(\d{1,2}))?$/.exec(t);
  if (!m) {
    const hint = /^\d+,\d+$/.test(t)
      ? ' (use a dot for the decimals; no thousands separators)'
      : /^\d+\.\d{3,}$/.test(t)
        ? ' (at most two decimals)'
        : '';
    throw new InvalidArgumentError(
      `"${text}" is not a price${hint}: give currency units with at most two decimals, such as 49 or 49.99, or --price-cents 4999`,
    );
  }
  return Number(m[1]) * 100 + Number((m[2] ?? '').padEnd(2, '0'));
}

/** --price-cents: a whole number of the smallest currency unit. */
export function parseCents(text: string): number {
  if (!/^\d{1,13}$/.test(text.trim())) {
    throw new InvalidArgumentError(`"${text}" is not a whole number of cents, such as 4999 (for 49.99); for currency units use --price`);
  }
  return Number(text.trim());
}

/** Exactly one of --price / --price-cents, as cents. */
export function priceCentsOf(o: { price?: number; priceCents?: number }): number {
  if (o.price !== undefined && o.priceCents !== undefined) {
    throw new InvalidArgumentError('give --price (currency units, e.g. 49.99) or --price-cents (e.g. 4999), not both');
  }
  const cents = o.price ?? o.priceCents;
  if (cents === undefined) throw new InvalidArgumentError('a price is needed: --price 49.99 (currency units) or --price-cents 4999');
  return cents;
}

/** The shape of every sale id ever issued: 12 base64url characters. */
const ISSUED_SALE_ID = /^-[A-Za-z0-9_-]{11}$/;

/**
 * Sale ids issued before ids were kept from starting with `-` look like options to commander
 * (`seckill sale show -x9…`: "unknown option"). For a command that takes a <saleId> or [saleId],
 * an argument of exactly an issued id's shape that is none of the command's options is moved
 * behind `--`, where it can only be an operand. `seckill sale show -- -x9…` works as well.
 */
export function protectSaleIds(root: Command, argv: readonly string[]): string[] {
  const head = argv.slice(0, 2);
  const args = argv.slice(2);
  if (args.includes('--')) return [...argv];
  let cmd = root;
  let i = 0;
  for (; i < args.length; i++) {
    const sub = cmd.commands.find((c) => c.name() === args[i] || c.aliases().includes(args[i]));
    if (!sub) break;
    cmd = sub;
  }
  if (!cmd.registeredArguments.some((a) => a.name() === 'saleId')) return [...argv];
  const optionOf = (flag: string) => cmd.options.find((o) => o.long === flag || o.short === flag);
  const rest = args.slice(i);
  for (let j = 0; j < rest.length; j++) {
    const arg = rest[j];
    const prev = j > 0 ? optionOf(rest[j - 1]) : undefined;
    if (prev && (prev.required || prev.optional)) continue; // the value of an option
    if (ISSUED_SALE_ID.test(arg) && !optionOf(arg)) {
      return [...head, ...args.slice(0, i), ...rest.slice(0, j), ...rest.slice(j + 1), '--', arg];
    }
  }
  return [...argv];
}
