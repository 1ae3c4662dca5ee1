import { envSchema } from 'env-schema';

/**
 * Around env-schema: values that mean one allowed value unambiguously are taken as it (`normal`
 * for NORMAL, `off` for false, `warning` for warn), and a refusal names each variable, the
 * value given and what is allowed, instead of the validator's schema wording.
 */

/** A start-up configuration error: one line per variable that is wrong. */
export class ConfigError extends Error {
  constructor(readonly problems: string[]) {
    super(`configuration error${problems.length > 1 ? 's' : ''}:\n  ${problems.join('\n  ')}`);
    this.name = 'ConfigError';
  }
}

interface PropSchema {
  type?: string;
  anyOf?: PropSchema[];
  const?: unknown;
  minimum?: number;
  maximum?: number;
  minLength?: number;
  maxLength?: number;
  pattern?: string;
}

interface ObjectSchema {
  properties: Record<string, PropSchema>;
}

interface AjvError {
  instancePath: string;
  keyword: string;
  params?: Record<string, unknown>;
}

/** Other words for an allowed value, used only when that value is allowed for the variable. */
const SYNONYMS: Record<string, string> = { on: 'true', off: 'false', warning: 'warn', err: 'error' };

function choices(p: PropSchema): string[] | null {
  if (!p.anyOf || !p.anyOf.every((s) => typeof s.const === 'string')) return null;
  return p.anyOf.map((s) => s.const as string);
}

/** A copy of `env` with the values that name exactly one allowed choice set to that choice. */
export function normalizeEnv(schema: ObjectSchema, env: NodeJS.ProcessEnv): NodeJS.ProcessEnv {
  const out: NodeJS.ProcessEnv = { ...env };
  for (const [name, p] of Object.entries(schema.properties)) {
    const allowed = choices(p);
    const v = env[name];
    if (!allowed || v === undefined || allowed.includes(v)) continue;
    const t = v.trim().toLowerCase();
    const matches = allowed.filter((a) => a.toLowerCase() === t || a === SYNONYMS[t]);
    if (matches.length === 1) out[name] = matches[0];
  }
  return out;
}

/** What a variable accepts, in words. */
export function allowedText(p: PropSchema): string {
  const list = choices(p);
  if (list) return `one of ${list.join(', ')}`;
  const range = (lo?: number, hi?: number) =>
    lo !== undefined && hi !== undefined ? ` from ${lo} to ${hi}` : lo !== undefined ? ` of at least ${lo}` : hi !== undefined ? ` of at most ${hi}` : '';
  if (p.type === 'integer') return `a whole number${range(p.minimum, p.maximum)}`;
  if (p.type === 'number') return `a number${range(p.minimum, p.maximum)}`;
  if (p.type === 'boolean') return 'true or false';
  const parts: string[] = [];
  if (p.minLength !== undefined && p.maxLength !== undefined) parts.push(`${p.minLength} to ${p.maxLength} characters`);
  else if (p.minLength !== undefined) parts.push(`at least ${p.minLength} characters`);
  else if (p.maxLength !== undefined) parts.push(`at most ${p.maxLength} characters`);
  if (p.pattern) parts.push(`matching ${p.pattern}`);
  return parts.length ? `text of ${parts.join(', ')}` : 'text';
}

/** The value as it may be printed: secrets only by length, passwords in URLs hidden. */
export function shownValue(name: string, value: string | undefined): string {
  if (value === undefined) return '(unset)';
  if (/KEY|SECRET|TOKEN|PASSWORD/i.test(name)) return `(${value.length} characters, not shown)`;
  const shown = value.replace(/^([a-z][a-z0-9+.-]*:\/\/[^:/@]*:)[^@/]*@/i, '$1***@');
  return JSON.stringify(shown);
}

/** One line per variable the validator refused. */
export function describeEnvErrors(schema: ObjectSchema, env: NodeJS.ProcessEnv, errors: readonly AjvError[]): string[] {
  const names: string[] = [];
  for (const e of errors) {
    const name = e.keyword === 'required' ? String(e.params?.missingProperty ?? '') : e.instancePath.replace(/^\//, '').split('/')[0];
    if (name && !names.includes(name)) names.push(name);
  }
  return names.map((name) => {
    const p = schema.properties[name];
    const what = p ? allowedText(p) : 'a valid value';
    return `${name}=${shownValue(name, env[name])} is not allowed: ${name} takes ${what}.`;
  });
}

/** env-schema's validation with the two additions above. */
export function validateEnv<T>(schema: ObjectSchema, env: NodeJS.ProcessEnv): T {
  const data = normalizeEnv(schema, env);
  try {
    return envSchema<T>({ schema: schema as never, data, env: false, dotenv: false });
  } catch (err) {
    const errors = (err as { errors?: AjvError[] }).errors;
    if (!Array.isArray(errors) || errors.length === 0) throw err;
    throw new ConfigError(describeEnvErrors(schema, data, errors));
  }
}
