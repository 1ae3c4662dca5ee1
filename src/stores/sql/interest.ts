import { render, type Dialect } from './statements.js';
import type { InterestPage, InterestRow, InterestSummary } from '../record-store.js';
import type { SqlArg } from './rows.js';

// Intended purchases (issue 13): buyers refused because a sale was sold out, one row per user and
// sale. The primary key is what keeps a user once per sale across processes and restarts: every
// writer inserts with ON CONFLICT DO NOTHING, so the first refusal recorded stays.

export const INTEREST_SCHEMA = `
CREATE TABLE IF NOT EXISTS intended_purchases (
  sale_id TEXT NOT NULL,
  user_id TEXT NOT NULL,
  quantity INTEGER NOT NULL,
  at BIGINT NOT NULL,
  PRIMARY KEY (sale_id, user_id)
);
`;

export interface DbInterestRow {
  sale_id: string;
  user_id: string;
  quantity: number;
  at: number;
}

export const INTEREST_COLUMNS = ['sale_id', 'user_id', 'quantity', 'at'] as const;

export function interestValues(r: InterestRow): SqlArg[] {
  return [r.saleId, r.userId, r.quantity, r.at];
}

/** The statements both dialects run (the batch insert differs: see each store). */
export function interestStatements(dialect: Dialect) {
  return {
    insert: render(`INSERT INTO intended_purchases (${INTEREST_COLUMNS.join(', ')}) VALUES (?, ?, ?, ?) ON CONFLICT (sale_id, user_id) DO NOTHING`, dialect),
    // Keyset pages by user id (the key's second column: no sort, no offset).
    firstPage: render('SELECT * FROM intended_purchases WHERE sale_id = ? ORDER BY user_id LIMIT ?', dialect),
    pageAfter: render('SELECT * FROM intended_purchases WHERE sale_id = ? AND user_id > ? ORDER BY user_id LIMIT ?', dialect),
    summary: render('SELECT COUNT(*) AS users, COALESCE(SUM(quantity), 0) AS units FROM intended_purchases WHERE sale_id = ?', dialect),
  } as const;
}

/** A page's query and arguments (one row more than `limit`, to tell whether there is a next page). */
export function interestPageQuery(sql: ReturnType<typeof interestStatements>, saleId: string, after: string | undefined, limit: number): { text: string; args: SqlArg[] } {
  return after === undefined
    ? { text: sql.firstPage, args: [saleId, limit + 1] }
    : { text: sql.pageAfter, args: [saleId, after, limit + 1] };
}

export function toInterestPage(rows: DbInterestRow[], limit: number): InterestPage {
  const more = rows.length > limit;
  const kept = (more ? rows.slice(0, limit) : rows).map((r) => ({ saleId: r.sale_id, userId: r.user_id, quantity: Number(r.quantity), at: Number(r.at) }));
  return { rows: kept, next: more ? kept[kept.length - 1].userId : null };
}

/** Counts come back as numbers from SQLite, as numeric strings from PostgreSQL. */
export function toInterestSummary(r: { users: number | string; units: number | string } | undefined): InterestSummary {
  return { users: Number(r?.users ?? 0), units: Number(r?.units ?? 0) };
}
