/**
 * What the gateway may refuse without asking the engine: sales known to be sold out and
 * users known to hold their limit. Both are hints that only ever refuse what the engine
 * would refuse too, and both are cleared as soon as stock comes back.
 */
export class LocalRefusals {
  private readonly soldOut = new Set<string>();
  private readonly atLimit = new Map<string, Set<string>>();

  isSoldOut(saleId: string): boolean {
    return this.soldOut.has(saleId);
  }

  markSoldOut(saleId: string): void {
    this.soldOut.add(saleId);
  }

  clearSoldOut(saleId: string): void {
    this.soldOut.delete(saleId);
  }

  /** Forget every hint (e.g. after missed signals): the next requests ask the engine. */
  clear(): void {
    this.soldOut.clear();
    this.atLimit.clear();
  }

  holdsLimit(saleId: string, userId: string): boolean {
    return this.atLimit.get(saleId)?.has(userId) ?? false;
  }

  markAtLimit(saleId: string, userId: string): void {
    let users = this.atLimit.get(saleId);
    if (!users) this.atLimit.set(saleId, (users = new Set()));
    users.add(userId);
  }

  /** Stock returned to a sale from this user's order. */
  released(saleId: string, userId: string): void {
    this.soldOut.delete(saleId);
    this.atLimit.get(saleId)?.delete(userId);
  }
}
