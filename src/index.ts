export { P5recError, InputError, NotFoundError } from './errors.js';
export { Rng } from './util/rng.js';
export { VERSION } from './version.js';
