/** The gateway's version; keep equal to package.json's "version" (a bundle cannot read package.json). */
export const VERSION = '0.1.0';
