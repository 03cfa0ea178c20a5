/**
 * Secret redaction applied at every error and log boundary.
 *
 * Bearer tokens, EKS `k8s-aws-v1.` tokens and SigV4 signatures/session tokens are bearer
 * credentials: anyone holding them can act as the signer for up to 15 minutes.
 */

const RULES: ReadonlyArray<readonly [RegExp, string]> = [
  [/k8s-aws-v1\.[A-Za-z0-9_-]+/g, 'k8s-aws-v1.<redacted>'],
  [/(Bearer\s+)[A-Za-z0-9._~+/=-]+/gi, '$1<redacted>'],
  [/(X-Amz-Signature=)[^&\s"']+/gi, '$1<redacted>'],
  [/(X-Amz-Security-Token=)[^&\s"']+/gi, '$1<redacted>'],
  [
    /("?(?:authorization|token|secretAccessKey|sessionToken|aws_secret_access_key|aws_session_token)"?\s*[:=]\s*"?)[^"\s,}]+/gi,
    '$1<redacted>',
  ],
];

/** Replaces tokens, signatures and secret-looking values in `text` with `<redacted>`. */
export function redactSecrets(text: string): string {
  let out = text;
  for (const [re, replacement] of RULES) out = out.replace(re, replacement);
  return out;
}
