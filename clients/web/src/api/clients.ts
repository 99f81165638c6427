/**
 * The gRPC clients the page calls, all over connect-web's grpc-web
 * transport (binary protobuf) to the server that served the page, or to
 * `VITE_ORCHESTRA_URL` when the page is served by Vite's dev server.
 */
import { createClient, type Client, type Transport } from "@connectrpc/connect";
import { createGrpcWebTransport } from "@connectrpc/connect-web";

import { RunService } from "../gen/orchestra/v1/run_pb.js";
import { TemplateService } from "../gen/orchestra/v1/template_pb.js";

/** The run service's client type, which the stream hook takes. */
export type RunClient = Client<typeof RunService>;

/** The services the page calls. */
export interface Clients {
  runs: RunClient;
  templates: Client<typeof TemplateService>;
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
  };
}

/** Where the services are: the page's own origin unless the build says otherwise. */
export function serverUrl(): string {
  const configured = import.meta.env.VITE_ORCHESTRA_URL as string | undefined;
  return configured && configured.length > 0 ? configured : window.location.origin;
}
