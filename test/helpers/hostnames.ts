/**
 * Deployment `hostnames`, the workload of the demo and of docs/lab.md: `replicas` pods labelled
 * app=hostnames running serve_hostname (the lab's hostname server) on 9376.
 */
import type { V1ContainerPort, V1Deployment } from '@kubernetes/client-node';

export function hostnamesDeployment(replicas: number, opts: { ports?: V1ContainerPort[]; nodeSelector?: Record<string, string> } = {}): V1Deployment {
  return {
    apiVersion: 'apps/v1',
    kind: 'Deployment',
    metadata: { name: 'hostnames', namespace: 'default' },
    spec: {
      replicas,
      selector: { matchLabels: { app: 'hostnames' } },
      template: {
        metadata: { labels: { app: 'hostnames' } },
        spec: {
          ...(opts.nodeSelector && { nodeSelector: opts.nodeSelector }),
          containers: [{ name: 'hostnames', image: 'registry.k8s.io/serve_hostname', ports: opts.ports ?? [{ containerPort: 9376 }] }],
        },
      },
    },
  };
}
