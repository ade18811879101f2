import { fileURLToPath } from 'node:url';
import * as grpc from '@grpc/grpc-js';
import protobuf from 'protobufjs';

/**
 * FAKE Modal plumbing: serves the services in ./proto with @grpc/grpc-js (the transport the SDK's
 * nice-grpc client uses), encoding with protobufjs from our proto subset. Handlers receive and
 * return plain camelCase objects, as the SDK's ts-proto types look.
 */

export type Handler = (req: Record<string, unknown>, meta: grpc.Metadata) => Promise<Record<string, unknown>>;

export class FakeStatus extends Error {
  constructor(
    readonly code: grpc.status,
    readonly details: string,
  ) {
    super(details);
  }
}

const toObjectOptions: protobuf.IConversionOptions = {
  longs: Number,
  enums: Number,
  defaults: true,
  arrays: true,
  objects: true,
};

function loadService(file: string, name: string): protobuf.Service {
  const root = new protobuf.Root().loadSync(fileURLToPath(new URL(`./proto/${file}`, import.meta.url)));
  return root.lookupService(name);
}

export const modalClientService = (): protobuf.Service =>
  loadService('modal_client.proto', 'modal.client.ModalClient');
export const commandRouterService = (): protobuf.Service =>
  loadService('task_command_router.proto', 'modal.task_command_router.TaskCommandRouter');

/** Registers every method of `service`; a method without a handler answers UNIMPLEMENTED, as a server would. */
export function addService(
  server: grpc.Server,
  service: protobuf.Service,
  handlers: Record<string, Handler>,
  before: (method: string, meta: grpc.Metadata) => void,
): void {
  const definition: Record<
    string,
    grpc.MethodDefinition<Record<string, unknown>, Record<string, unknown>>
  > = {};
  const impl: grpc.UntypedServiceImplementation = {};
  const full = service.fullName.replace(/^\./, '');
  for (const method of service.methodsArray) {
    method.resolve();
    const req = method.resolvedRequestType;
    const res = method.resolvedResponseType;
    if (!req || !res) throw new Error(`unresolved types for ${method.name}`);
    definition[method.name] = {
      path: `/${full}/${method.name}`,
      requestStream: false,
      responseStream: false,
      requestSerialize: (o: Record<string, unknown>) => Buffer.from(req.encode(req.fromObject(o)).finish()),
      requestDeserialize: (b: Buffer) => req.toObject(req.decode(b), toObjectOptions),
      responseSerialize: (o: Record<string, unknown>) => Buffer.from(res.encode(res.fromObject(o)).finish()),
      responseDeserialize: (b: Buffer) => res.toObject(res.decode(b), toObjectOptions),
    };
    const handler = handlers[method.name];
    impl[method.name] = (
      call: grpc.ServerUnaryCall<Record<string, unknown>, Record<string, unknown>>,
      callback: grpc.sendUnaryData<Record<string, unknown>>,
    ) => {
      const run = async (): Promise<Record<string, unknown>> => {
        before(method.name, call.metadata);
        if (!handler)
          throw new FakeStatus(grpc.status.UNIMPLEMENTED, `fake Modal does not implement ${method.name}`);
        return handler(call.request, call.metadata);
      };
      run().then(
        (out) => callback(null, out),
        (err: unknown) => {
          if (err instanceof FakeStatus) callback({ code: err.code, details: err.details });
          else callback({ code: grpc.status.INTERNAL, details: (err as Error).message });
        },
      );
    };
  }
  server.addService(definition as grpc.ServiceDefinition, impl);
}
