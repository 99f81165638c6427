/** Times as the page reads them from protobuf timestamps. */
import type { Timestamp } from "@bufbuild/protobuf/wkt";

/** Milliseconds since the epoch of a protobuf timestamp. */
export function timestampMs(time: Timestamp | undefined): number | undefined {
  return time ? Number(time.seconds) * 1000 + Math.floor(time.nanos / 1e6) : undefined;
}
