/**
 * Custody text for a kubelet checkpoint: the archive is written on the node and is not part of the
 * bundle, so the record says where it is, what it holds and how to fetch it.
 */
import type { CheckpointResult } from '../../kube/index.js';

/** Custody entry of a checkpoint (goes into custody.json). */
export interface CheckpointCustody {
  kind: 'kubelet-checkpoint';
  node: string;
  namespace: string;
  pod: string;
  container: string;
  at: string;
  /** Archive paths on the node. */
  archives: string[];
  /** Always `node`: the bytes are not in this bundle. */
  location: 'node';
  /** Plain-text statement for the record. */
  text: string;
  /** Steps to fetch the archive, in order of preference. */
  fetch: string[];
}

/** Builds the custody entry of a checkpoint taken with `KubeClient.checkpointContainer`. */
export function checkpointCustody(r: CheckpointResult): CheckpointCustody {
  const list = r.archives.join(', ');
  return {
    kind: 'kubelet-checkpoint',
    node: r.node,
    namespace: r.namespace,
    pod: r.pod,
    container: r.container,
    at: r.at,
    archives: r.archives,
    location: 'node',
    text:
      `At ${r.at} the kubelet on node ${r.node} checkpointed container ${r.container} of pod ${r.namespace}/${r.pod} ` +
      `into ${list}. The archive stays on the node and is NOT in this bundle: its hash is not in the manifest. ` +
      'It holds the whole memory of the container (and, with CRI-O/CRIU, a diff of its root filesystem): treat it as sensitive evidence. ' +
      'Kubelets do not rotate checkpoints; it remains until deleted or the node is replaced.',
    fetch: [
      `Snapshot the node's root volume (the node-snapshot step of eks-forensics, or EC2 CreateSnapshot of ${r.node}'s root EBS volume) and copy ${list} from a volume made from the snapshot; hash it there.`,
      `Or, with SSM on the node: aws ssm start-session --target <instance-id of ${r.node}>, then sha256sum ${list} and copy it out (e.g. to an S3 evidence bucket with Object Lock); record both hashes.`,
      'Protect the node from scale-in and termination first (autoscaling:SetInstanceProtection, DisableApiTermination), or the archive is lost with it.',
    ],
  };
}
