/**
 * Wire codecs, parsers and converters: the exec channel codec and status parser, frame
 * demultiplexing, tar receiving, Kubernetes and EC2 object converters, the visibility policy.
 *
 * @module eks-forensics/codecs
 */
export {
  assessImds,
  CLOUD_CONTEXT_PATHS,
  classifyNodeCompute,
  classifySource,
  FARGATE_SKIP_REASON,
  parseProviderId,
  toNodeRef,
  toPodRef,
} from '../aws-evidence/index.js';
export {
  computeTypeOf,
  DEFAULT_HIDDEN_IMAGES,
  DEFAULT_HIDDEN_NAMESPACES,
  DEFAULT_VISIBILITY,
  IRSA_ROLE_ANNOTATION,
  imageDigestOf,
  reachabilityOf,
  resolveVisibility,
  toClusterInfo,
  toPodInfo,
} from '../catalog/index.js';
export {
  demuxFrames,
  jwtRecord,
  metadataFindings,
  parseProfileSpec,
  readTarEntry,
  receiveTar,
} from '../collect/index.js';
export {
  Channel,
  decodeFrame,
  EXEC_PROTOCOLS,
  encodeClose,
  encodeFrame,
  encodeStatusPayload,
  internalErrorStatus,
  MAX_FRAME_BYTES,
  MAX_STATUS_BYTES,
  nonZeroExitStatus,
  parseExecStatus,
  parseForbidden,
  successStatus,
} from '../kube/index.js';
export { redactSecrets } from '../util/index.js';
