/**
 * Where the lab kubelet puts an unscheduled pod (the lab has no kube-scheduler): among the nodes
 * whose labels match the pod's nodeSelector, the one with the fewest pods; ties go round-robin, so
 * replicas of one Deployment spread over the nodes as the default scheduler's spreading would.
 */
export interface PlacementNode {
  name: string;
  labels: Record<string, string>;
  /** Pods bound to it that are neither finished nor being deleted. */
  load: number;
}

export function pickNode(nodes: readonly PlacementNode[], nodeSelector: Record<string, string> | undefined, cursor: number): string | undefined {
  const fits = nodes.filter((n) => Object.entries(nodeSelector ?? {}).every(([k, v]) => n.labels[k] === v));
  if (fits.length === 0) return undefined;
  const least = Math.min(...fits.map((n) => n.load));
  const tied = fits.filter((n) => n.load === least);
  return tied[((cursor % tied.length) + tied.length) % tied.length]!.name;
}
