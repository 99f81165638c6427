/**
 * An artifact version's content: inline when the store sent it with the
 * version, streamed with ReadArtifactContent when it is larger.
 */
import type { ArtifactClient } from "./clients.js";
import type { ArtifactVersion } from "../gen/orchestra/v1/artifact_pb.js";

/** The whole content of `artifactId` at `version`, with its version record. */
export async function fetchVersion(
  client: ArtifactClient,
  artifactId: string,
  version: number,
  signal?: AbortSignal,
): Promise<{ version: ArtifactVersion; content: Uint8Array }> {
  const got = await client.getArtifact({ artifactId, version, includeContent: true }, { signal });
  const found = got.artifact;
  if (!found) throw new Error(`artifact ${artifactId} v${version} not found`);
  if (found.contentInlined) return { version: found, content: found.content };
  const chunks: Uint8Array[] = [];
  for await (const piece of client.readArtifactContent({ artifactId, version }, { signal })) chunks.push(piece.chunk);
  const content = new Uint8Array(chunks.reduce((n, c) => n + c.length, 0));
  let at = 0;
  for (const chunk of chunks) {
    content.set(chunk, at);
    at += chunk.length;
  }
  return { version: found, content };
}
