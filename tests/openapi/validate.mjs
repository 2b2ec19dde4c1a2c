// Validates an OpenAPI document against the official OpenAPI 3.1 JSON Schema (bundled with
// @seriousme/openapi-schema-validator) and checks that every $ref resolves. Exit 0 when valid.
//   node validate.mjs ../../docs/openapi.json
import { Validator } from "@seriousme/openapi-schema-validator";

const file = process.argv[2];
if (!file) {
  console.error("usage: node validate.mjs FILE");
  process.exit(2);
}
const validator = new Validator();
const result = await validator.validate(file);
if (!result.valid) {
  console.error(`${file}: not a valid OpenAPI document`);
  console.error(JSON.stringify(result.errors, null, 2));
  process.exit(1);
}
if (!validator.version.startsWith("3.1")) {
  console.error(`${file}: OpenAPI ${validator.version}, expected 3.1`);
  process.exit(1);
}
validator.resolveRefs(); // throws on a dangling $ref
console.log(`${file}: valid OpenAPI ${validator.version}`);
