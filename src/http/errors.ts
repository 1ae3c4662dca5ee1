import type { FastifyError, FastifyReply, FastifyRequest } from 'fastify';
import { ERROR_STATUS, PRESERIALIZED, SeckillError, errorBody, type ErrorCode } from '../domain/errors.js';

const JSON_TYPE = 'application/json; charset=utf-8';

/** The cheap refusal: a pre-serialized body, no Error, no stack, no JSON work. */
export function refuse(request: FastifyRequest, reply: FastifyReply, code: ErrorCode, retryAfter?: number): FastifyReply {
  request.outcome = code;
  reply.code(ERROR_STATUS[code]).header('content-type', JSON_TYPE);
  if (retryAfter !== undefined) reply.header('retry-after', String(retryAfter));
  else if (code === 'busy' || code === 'rate_limited') reply.header('retry-after', '1');
  return reply.send(PRESERIALIZED[code]);
}

function sendSeckillError(request: FastifyRequest, reply: FastifyReply, err: SeckillError): FastifyReply {
  request.outcome = err.code;
  if (err.cause !== undefined) request.log.error({ err: err.cause, code: err.code }, 'refused after an internal failure');
  reply.code(err.status).header('content-type', JSON_TYPE);
  if (err.retryAfter !== undefined) reply.header('retry-after', String(err.retryAfter));
  return reply.send(errorBody(err.code, err.message));
}

/**
 * The one place where any error becomes an HTTP answer: domain errors keep their code,
 * fastify's own 4xx become bad_request / payload_too_large, anything else is a logged 500
 * whose body says nothing about the inside.
 */
export function errorHandler(err: FastifyError | SeckillError, request: FastifyRequest, reply: FastifyReply): FastifyReply {
  if (err instanceof SeckillError) return sendSeckillError(request, reply, err);
  const fe = err as FastifyError;
  if (fe.validation) {
    return sendSeckillError(request, reply, new SeckillError('bad_request', `${fe.validationContext ?? 'request'}${fe.validation[0]?.instancePath ?? ''} ${fe.validation[0]?.message ?? 'is invalid'}`.trim()));
  }
  if (fe.code === 'FST_ERR_CTP_BODY_TOO_LARGE' || fe.statusCode === 413) {
    return sendSeckillError(request, reply, new SeckillError('payload_too_large'));
  }
  if (fe.code === 'FST_ERR_CTP_INVALID_MEDIA_TYPE') {
    return sendSeckillError(request, reply, new SeckillError('bad_request', 'Content-Type must be application/json.'));
  }
  if (fe.statusCode !== undefined && fe.statusCode >= 400 && fe.statusCode < 500) {
    // JSON syntax errors, empty bodies, bad content-length: fastify's messages are safe to show.
    return sendSeckillError(request, reply, new SeckillError('bad_request', fe.message));
  }
  request.log.error({ err }, 'unhandled error');
  return sendSeckillError(request, reply, new SeckillError('internal'));
}

export function notFoundHandler(request: FastifyRequest, reply: FastifyReply): FastifyReply {
  return refuse(request, reply, 'not_found');
}
