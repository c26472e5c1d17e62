/**
 * How failures become HTTP answers: one JSON body `{ error, field? }`, a
 * status from the error's facts, and no server file paths in a 5xx.
 */
import type { FastifyError, FastifyInstance } from 'fastify';
import { P5recError } from '../errors.js';

/** A request the model cannot serve (422). */
export function unprocessable(message: string, field?: string): P5recError {
  return new P5recError(message, { status: 422, ...(field ? { field } : {}) });
}

/** One line for a schema violation, naming the field (Ajv reports the first error only). */
function validationError(err: FastifyError): { error: string; field?: string } {
  const v = err.validation![0];
  const part = err.validationContext ?? 'body';
  const path = v.instancePath.replace(/^\//, '').replace(/\//g, '.');
  if (v.keyword === 'additionalProperties') {
    const name = String((v.params as { additionalProperty?: string }).additionalProperty);
    return { error: `${part} has an unknown field '${path ? `${path}.` : ''}${name}'`, field: name };
  }
  if (v.keyword === 'required') {
    const name = String((v.params as { missingProperty?: string }).missingProperty);
    return { error: `${part} is missing the required field '${name}'`, field: name };
  }
  return { error: err.message, ...(path ? { field: path } : {}) };
}

/** A server-side failure's message without file paths (a 5xx message may come from deep code that names files). */
const ABS_PATH = /(?:[A-Za-z]:)?[\\/](?:[^\s'"`\\/]+[\\/])+[^\s'"`:,;)]*/g;
const scrub = (message: string): string => message.replace(ABS_PATH, '<path>');

/** The error and not-found handlers; `bodyLimit` is named in the 413 message. */
export function addErrorHandlers(app: FastifyInstance, bodyLimit: number): void {
  app.setErrorHandler((err: FastifyError | P5recError | Error, req, reply) => {
    if ('validation' in err && err.validation) return reply.code(400).send(validationError(err));
    if ((err as FastifyError).code === 'FST_ERR_CTP_BODY_TOO_LARGE') return reply.code(413).send({ error: `request body is larger than ${bodyLimit} bytes` });
    if (err instanceof P5recError) {
      const status = err.facts.status ?? 500;
      const server = status >= 500 && status !== 501;
      if (server) req.log.error(err);
      return reply.code(status).send({ error: server ? scrub(err.message) : err.message, ...(err.facts.field ? { field: err.facts.field } : {}) });
    }
    const status = (err as FastifyError).statusCode;
    if (status && status >= 400 && status < 500) return reply.code(status).send({ error: err.message });
    req.log.error(err);
    return reply.code(500).send({ error: 'internal error' });
  });
  app.setNotFoundHandler((req, reply) => reply.code(404).send({ error: `no route ${req.method} ${req.url.split('?')[0]}` }));
}
