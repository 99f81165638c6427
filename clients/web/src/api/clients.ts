/**
 * The gRPC clients the page calls, all over connect-web's grpc-web
 * transport (binary protobuf) to the server that served the page, or to
 * `VITE_ORCHESTRA_URL` when the page is served by Vite's dev server. The
 * page reaches them through {@link ClientsContext}.
 */
import { createClient, type Client, type Transport } from "@connectrpc/connect";
import { createGrpcWebTransport } from "@connectrpc/connect-web";
import { createContext, useContext } from "react";

import { ArtifactService } from "../gen/orchestra/v1/artifact_pb.js";
import { ReviewService } from "../gen/orchestra/v1/review_pb.js";
import { RunService } from "../gen/orchestra/v1/run_pb.js";
import { TemplateService } from "../gen/orchestra/v1/template_pb.js";

/** The run service's client type, which the stream hook takes. */
export type RunClient = Client<typeof RunService>;
/** The artifact store's client type. */
export type ArtifactClient = Client<typeof ArtifactService>;
/** The review service's client type. */
export type ReviewClient = Client<typeof ReviewService>;
/** The template service's client type. */
export type TemplateClient = Client<typeof TemplateService>;

/** The services the page calls. */
export interface Clients {
  runs: RunClient;
  templates: TemplateClient;
  artifacts: ArtifactClient;
  review: ReviewClient;
}

/** A grpc-web transport to `baseUrl`. */
export function grpcWebTransport(baseUrl: string): Transport {
  return createGrpcWebTransport({ baseUrl, useBinaryFormat: true });
}

/** Clients over one transport. */
export function createClients(transport: Transport): Clients {
  return {
    runs: createClient(RunService, transport),
    templates: createClient(TemplateService, transport),
    artifacts: createClient(ArtifactService, transport),
    review: createClient(ReviewService, transport),
  };
}

/** Where the services are: the page's own origin unless the build says otherwise. */
export function serverUrl(): string {
  const configured = import.meta.env.VITE_ORCHESTRA_URL as string | undefined;
  return configured && configured.length > 0 ? configured : window.location.origin;
}

/** The clients of the page, provided once at its root. */
export const ClientsContext = createContext<Clients | null>(null);

/** The page's clients; only inside {@link ClientsContext}'s provider. */
export function useClients(): Clients {
  const clients = useContext(ClientsContext);
  if (!clients) throw new Error("useClients outside ClientsContext");
  return clients;
}
