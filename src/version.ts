/** Package version, also written into dataset manifests. */
export const VERSION = '0.1.0';
