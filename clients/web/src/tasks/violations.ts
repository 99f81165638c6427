/**
 * The server's field violations of a refused form, at their fields: read
 * from the error's `google.rpc.BadRequest` detail (decoded with the
 * protobuf runtime's reader; its FieldViolation has the wire shape of
 * orchestra.v1.FieldViolation) and turned into the error tree
 * react-jsonschema-form shows beside each field. Pure.
 */
import { fromBinary } from "@bufbuild/protobuf";
import { BinaryReader, WireType } from "@bufbuild/protobuf/wire";
import type { ConnectError } from "@connectrpc/connect";
import type { ErrorSchema } from "@rjsf/utils";

import { FieldViolationSchema } from "../gen/orchestra/v1/common_pb.js";

/** One fault: the JSON pointer of the value (`/` for the whole form) and what is wrong. */
export interface FieldFault {
  field: string;
  description: string;
}

const BAD_REQUEST = "google.rpc.BadRequest";

/** The field violations an error carries (none when it carries no BadRequest). */
export function fieldFaults(error: ConnectError): FieldFault[] {
  const faults: FieldFault[] = [];
  for (const detail of error.details) {
    if (!("type" in detail) || detail.type !== BAD_REQUEST || !(detail.value instanceof Uint8Array)) continue;
    const reader = new BinaryReader(detail.value);
    while (reader.pos < reader.len) {
      const [field, wireType] = reader.tag();
      if (field === 1 && wireType === WireType.LengthDelimited) {
        const violation = fromBinary(FieldViolationSchema, reader.bytes());
        faults.push({ field: violation.field, description: violation.description });
      } else {
        reader.skip(wireType);
      }
    }
  }
  return faults;
}

/** `"goal" is a required property` names the missing field. */
const REQUIRED = /^"([^"]+)" is a required property$/;

/**
 * The error tree for react-jsonschema-form: each fault under its field's
 * path, a missing required field under that field rather than its parent.
 */
export function errorSchemaOf(faults: FieldFault[]): ErrorSchema {
  const root: Record<string, unknown> = {};
  for (const fault of faults) {
    const path = pointerSegments(fault.field);
    const missing = REQUIRED.exec(fault.description);
    if (missing) path.push(missing[1]);
    let node = root;
    for (const segment of path) {
      node[segment] = (node[segment] as Record<string, unknown> | undefined) ?? {};
      node = node[segment] as Record<string, unknown>;
    }
    const errors = (node.__errors as string[] | undefined) ?? [];
    errors.push(missing ? "is required" : fault.description);
    node.__errors = errors;
  }
  return root as ErrorSchema;
}

/** `/a/0/b~1c` → ["a", "0", "b/c"]; a field that is not a pointer is the form itself. */
export function pointerSegments(pointer: string): string[] {
  if (!pointer.startsWith("/")) return [];
  return pointer
    .slice(1)
    .split("/")
    .filter((s) => s !== "")
    .map((s) => s.replace(/~1/g, "/").replace(/~0/g, "~"));
}
