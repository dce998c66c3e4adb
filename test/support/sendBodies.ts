import fc from 'fast-check';

/*
 * Building blocks of generated POST /api/send bodies, shared by the OpenAPI agreement test (valid
 * and invalid bodies, the schema's verdict against the handler's) and the fuzz suite (invalid
 * requests only, each a deliberate mutation of a valid one).
 */

/** Address strings nodemailer's addressparser reads as exactly one valid address. */
export const VALID_ADDRESS_STRINGS = ['ada@example.com', 'Ada Lovelace <ada@example.com>', '"Lovelace, Ada" <ada@example.com>', 'desk@localhost.localdomain', 'Desk <desk@localhost.localdomain>'];
export const EMAILS = ['grace@example.org', 'desk@localhost.localdomain', 'a.b+c@sub.example.co.uk'];

export const notAString = fc.oneof(fc.integer(), fc.boolean(), fc.constant(null), fc.constant([]), fc.constant({}));
export const lineBreak = fc.constantFrom('\r', '\n', '\r\n');
