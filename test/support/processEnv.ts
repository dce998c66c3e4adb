/**
 * Sets process.env variables until the returned function restores them. For libraries that
 * read process.env themselves instead of taking options: DefaultAzureCredential's
 * EnvironmentCredential (AZURE_*), MSAL's managed identity sources (IDENTITY_ENDPOINT,
 * IDENTITY_HEADER). Tests in one file run one after another, and each file has its own process.
 */
export function setProcessEnv(values: Record<string, string>): () => void {
  const saved = Object.fromEntries(Object.keys(values).map((k) => [k, process.env[k]]));
  Object.assign(process.env, values);
  return () => {
    for (const [k, v] of Object.entries(saved)) {
      if (v === undefined) delete process.env[k];
      else process.env[k] = v;
    }
  };
}
