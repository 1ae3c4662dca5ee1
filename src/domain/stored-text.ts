/*
 * Stored text must be text every store can keep: PostgreSQL's text cannot hold U+0000, and an
 * unpaired UTF-16 surrogate is no valid UTF-8 (PostgreSQL refuses it; Redis and SQLite would keep
 * bytes no reader can decode). One such string in a batch used to stop the order writer (issue 9,
 * defect 5). The HTTP schemas refuse them at the door; the services check again, so that no other
 * caller (CLI, a future route) can hand a store what it cannot keep. With the `u` flag `\p{Cs}`
 * matches only a lone surrogate (a valid pair is one astral code point).
 */

/** One line: no control characters (C0, DEL, C1; U+0000 among them), no lone surrogate. */
export const SINGLE_LINE_TEXT = '^[^\\p{Cc}\\p{Cs}]*$';
/** Free text: tab and line breaks allowed, no other control character, no lone surrogate. */
export const MULTI_LINE_TEXT = '^(?:[\\t\\n\\r]|[^\\p{Cc}\\p{Cs}])*$';

const SINGLE_LINE_RE = new RegExp(SINGLE_LINE_TEXT, 'u');
const MULTI_LINE_RE = new RegExp(MULTI_LINE_TEXT, 'u');

/** Whether every store can keep `s` as one line of text. */
export function isStorableLine(s: string): boolean {
  return SINGLE_LINE_RE.test(s);
}

/** Whether every store can keep `s` as free text (tab and line breaks allowed). */
export function isStorableText(s: string): boolean {
  return MULTI_LINE_RE.test(s);
}
