// Verifies a Troupe access token with an independent JOSE library (jose, pinned by
// package-lock.json): the signing keys come from the server's JWKS, the token must be an
// EdDSA JWT issued by "troupe". Prints the payload as JSON and exits 0 when it verifies;
// prints the reason on stderr and exits 1 otherwise (including bad usage).
//   node verify.mjs http://127.0.0.1:8080/.well-known/jwks.json eyJhbGciOi...
import { createRemoteJWKSet, jwtVerify } from "jose";

const [jwksUrl, token] = process.argv.slice(2);
if (!jwksUrl || !token) {
  console.error("usage: node verify.mjs JWKS_URL TOKEN");
  process.exit(1);
}
try {
  const jwks = createRemoteJWKSet(new URL(jwksUrl), { timeoutDuration: 10000 });
  const { payload, protectedHeader } = await jwtVerify(token, jwks, {
    issuer: "troupe",
    algorithms: ["EdDSA"],
  });
  if (protectedHeader.alg !== "EdDSA") {
    throw new Error(`unexpected alg ${protectedHeader.alg}`);
  }
  console.log(JSON.stringify(payload));
  process.exit(0);
} catch (err) {
  console.error(`not verified: ${err.code ?? err.name}: ${err.message}`);
  process.exit(1);
}
