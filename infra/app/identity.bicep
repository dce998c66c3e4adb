// The one identity of the app: the host's storage (AzureWebJobsStorage__*), the deployment
// package, the vault (DefaultAzureCredential through AZURE_CLIENT_ID, Key Vault references),
// Application Insights, and profiles with auth managedIdentity or federated.
@description('Name of the user-assigned managed identity.')
param name string

param location string = resourceGroup().location
param tags object = {}

resource identity 'Microsoft.ManagedIdentity/userAssignedIdentities@2023-01-31' = {
  name: name
  location: location
  tags: tags
}

output name string = identity.name
output resourceId string = identity.id
output clientId string = identity.properties.clientId
output principalId string = identity.properties.principalId
