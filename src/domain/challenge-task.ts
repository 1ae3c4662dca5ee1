// What `POST /api/sales/:saleId/challenge` answers (docs/challenges.md): apart from the rules in
// challenge.ts, so that the sale page type-checks against it (tsconfig.web.json) without Node's crypto.

export type ChallengeTask =
  | { kind: 'pow'; challenge: string; bits: number }
  | { kind: 'quiz'; challenge: string; question: string; choices: string[] };
