import { Type } from 'typebox';
import { MULTI_LINE_TEXT, SINGLE_LINE_TEXT } from '../domain/stored-text.js';

// Every body and parameter is validated against these; unknown fields are refused.
const strict = { additionalProperties: false } as const;

// Stored text (names, paymentRef, …) follows the one rule of src/domain/stored-text.ts; ajv
// compiles patterns with the `u` flag, and maxLength counts code points.

export const SaleIdParams = Type.Object({ saleId: Type.String({ pattern: '^[A-Za-z0-9_-]{1,64}$' }) }, strict);

export const BuyParams = Type.Object(
  {
    saleId: Type.String({ pattern: '^[A-Za-z0-9_-]{1,64}$' }),
    path: Type.String({ minLength: 1, maxLength: 256 }),
  },
  strict,
);

export const OrderIdParams = Type.Object(
  { orderId: Type.String({ pattern: '^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$' }) },
  strict,
);

export const BuyBody = Type.Union([
  Type.Object({ quantity: Type.Optional(Type.Integer({ minimum: 1, maximum: 1000 })) }, strict),
  Type.Null(),
]);

export const PayBody = Type.Object({ paymentRef: Type.String({ minLength: 1, maxLength: 128, pattern: SINGLE_LINE_TEXT }) }, strict);

/** A refund's optional reason, kept with the order (single-line stored text). */
export const RefundBody = Type.Union([
  Type.Object({ reason: Type.Optional(Type.String({ maxLength: 500, pattern: SINGLE_LINE_TEXT })) }, strict),
  Type.Null(),
]);

/** Routes that take no body accept none or an empty object. */
export const EmptyBody = Type.Union([Type.Object({}, strict), Type.Null()]);

export const EventsQuery = Type.Object({ access_token: Type.Optional(Type.String({ maxLength: 4096, pattern: SINGLE_LINE_TEXT })) }, strict);

export const CreateSaleBody = Type.Object(
  {
    name: Type.String({ minLength: 1, maxLength: 200, pattern: SINGLE_LINE_TEXT }),
    description: Type.Optional(Type.String({ maxLength: 4000, pattern: MULTI_LINE_TEXT })),
    priceCents: Type.Integer({ minimum: 0, maximum: 1_000_000_000_000 }),
    stock: Type.Integer({ minimum: 1, maximum: 10_000_000 }),
    startsAt: Type.String({ format: 'date-time' }),
    endsAt: Type.Optional(Type.String({ format: 'date-time' })),
    perUserLimit: Type.Optional(Type.Integer({ minimum: 1, maximum: 1000 })),
    paymentWindowSeconds: Type.Optional(Type.Integer({ minimum: 1, maximum: 7 * 24 * 3600 })),
    // What a refund does with the units: back to stock (true) or kept sold and held (false, default).
    restockOnRefund: Type.Optional(Type.Boolean()),
    // The waiting room and the challenge (issue 14); null: none. Refused once the sale opened.
    waitingRoom: Type.Optional(Type.Union([
      Type.Object(
        {
          method: Type.Union([Type.Literal('random'), Type.Literal('fifo')]),
          admitPerSecond: Type.Number({ exclusiveMinimum: 0, maximum: 100_000 }),
          stockFactor: Type.Optional(Type.Number({ minimum: 1, maximum: 100 })),
        },
        strict,
      ),
      Type.Null(),
    ])),
    challenge: Type.Optional(Type.Union([Type.Literal('pow'), Type.Literal('quiz'), Type.Null()])),
  },
  strict,
);

const saleField = CreateSaleBody.properties;

/**
 * A correction: any of the creation fields (same rules), at least one; `endsAt: null` removes the
 * end time. Which may change once the sale has opened is the sale service's rule (`sale_open`).
 */
export const CorrectSaleBody = Type.Object(
  {
    name: Type.Optional(saleField.name),
    description: Type.Optional(saleField.description),
    priceCents: Type.Optional(saleField.priceCents),
    stock: Type.Optional(saleField.stock),
    startsAt: Type.Optional(saleField.startsAt),
    endsAt: Type.Optional(Type.Union([Type.String({ format: 'date-time' }), Type.Null()])),
    perUserLimit: Type.Optional(saleField.perUserLimit),
    paymentWindowSeconds: Type.Optional(saleField.paymentWindowSeconds),
    waitingRoom: saleField.waitingRoom,
    challenge: saleField.challenge,
  },
  { ...strict, minProperties: 1 },
);

export const SwitchesBody = Type.Object(
  { refuseBuys: Type.Optional(Type.Boolean()), degraded: Type.Optional(Type.Boolean()) },
  strict,
);

export const OrderStatusSchema = Type.Union([
  Type.Literal('reserved'),
  Type.Literal('paid'),
  Type.Literal('expired'),
  Type.Literal('cancelled'),
  Type.Literal('refunded'),
]);

export const ListOrdersQuery = Type.Object(
  {
    status: Type.Optional(OrderStatusSchema),
    // The `next` cursor of the previous page (an order id): it goes into a query, so nothing else.
    after: Type.Optional(Type.String({ pattern: '^[0-9A-Za-z-]{1,64}$' })),
    limit: Type.Optional(Type.String({ pattern: '^[0-9]{1,4}$' })),
  },
  strict,
);
