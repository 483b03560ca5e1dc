// tweetnacl is a classic script (/app/vendor/nacl-fast.min.js) that sets globalThis.nacl
// (require('tweetnacl') does under node): the package's own declarations describe it.
export {};

declare global {
  var nacl: typeof import('tweetnacl') | undefined;
}
