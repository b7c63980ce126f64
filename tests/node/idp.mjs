// A real OpenID Connect identity provider for the integration tests (and the README's
// "Running it for real"): oauth2-mock-server on 127.0.0.1, port $PORT (default: one of its own
// choosing), with one RS256 signing key to start with.
//
// It prints one JSON line when it is listening: {"issuer": "http://127.0.0.1:PORT"}.
// Then it reads commands, one per line on standard input, and answers each with one JSON line:
//   rotate          a new RS256 key becomes the signing key  -> {"kid": "..."}
//   retire KID      the key leaves the JWKS (tokens can still be signed with it, as a thief could)
//                                                             -> {"retired": "KID"}
//   sign KID JSON   a token signed with key KID (or "-": the signing key), its payload the JSON
//                   claims on top of iss/iat/exp/nbf          -> {"token": "..."}
// It exits when standard input closes.
import { createInterface } from 'node:readline';
import { OAuth2Server } from 'oauth2-mock-server';

const server = new OAuth2Server();
const keys = server.issuer.keys;
let signing = (await keys.generate('RS256')).kid;
const retired = new Set();
// The JWKS endpoint answers the keystore's toJSON(); retired keys are left out of it.
const toJSON = keys.toJSON.bind(keys);
keys.toJSON = (privateFields) => toJSON(privateFields).filter((key) => !retired.has(key.kid));

// Tokens are signed with the current signing key (the keystore would take turns otherwise).
const get = keys.get.bind(keys);
keys.get = (kid) => get(kid ?? signing);
// The token endpoint's tokens carry the client's id (client_credentials with client_id in the
// form body).
server.service.on('beforeTokenSigning', (token, req) => {
  if (req.body && req.body.client_id) token.payload.client_id = req.body.client_id;
});

await server.start(Number(process.env.PORT ?? 0), '127.0.0.1');
// The issuer (and so the discovery document's jwks_uri) names 127.0.0.1, not localhost.
server.issuer.url = `http://127.0.0.1:${server.address().port}`;
console.log(JSON.stringify({ issuer: server.issuer.url }));

const answer = (value) => console.log(JSON.stringify(value));
for await (const line of createInterface({ input: process.stdin })) {
  const [command, kid, ...rest] = line.trim().split(' ');
  try {
    if (command === 'rotate') {
      signing = (await keys.generate('RS256')).kid;
      answer({ kid: signing });
    } else if (command === 'retire') {
      retired.add(kid);
      answer({ retired: kid });
    } else if (command === 'sign') {
      const claims = JSON.parse(rest.join(' '));
      const token = await server.issuer.buildToken({
        kid: kid === '-' ? signing : kid,
        scopesOrTransform: (_header, payload) => Object.assign(payload, claims),
      });
      answer({ token });
    } else {
      answer({ error: `unknown command ${command}` });
    }
  } catch (error) {
    answer({ error: String(error) });
  }
}
await server.stop().catch(() => {});
