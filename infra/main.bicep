// m365-mail-functions on Azure: `azd up` provisions this, then deploys the app (azure.yaml).
// One resource group; a Function App on the Flex Consumption plan; one user-assigned managed
// identity that reaches Storage, Key Vault and Application Insights with Entra ID (no keys,
// no connection strings with secrets). What it creates and costs: docs/deploy.md.
targetScope = 'subscription'

@minLength(1)
@maxLength(64)
@description('Name of the azd environment; with the subscription and the location it makes the token that keeps every resource name unique.')
param environmentName string

@minLength(1)
@description('Region of every resource. Flex Consumption is not offered in every region: `az functionapp list-flexconsumption-locations` lists those that have it.')
@metadata({
  azd: {
    type: 'location'
  }
})
param location string

@description('Object id of the user or service principal running azd (azd passes it). It may put secrets into the vault and read the storage account; empty: no such role assignments.')
param principalId string = ''

@description('Kind of principalId: User for a person, ServicePrincipal for a pipeline.')
@allowed([
  'User'
  'ServicePrincipal'
])
param principalType string = 'User'

@description('Node.js major version of the Functions runtime.')
@allowed([
  '20'
  '22'
])
param nodeVersion string = '20'

@description('Memory of each Flex Consumption instance, in MB; execution is billed per GB-second of it.')
@allowed([
  512
  2048
  4096
])
param instanceMemoryMB int = 2048

@description('Most instances the app scales out to.')
@minValue(40)
@maxValue(1000)
param maximumInstanceCount int = 100

@description('true: a virtual network with a subnet delegated to Microsoft.App/environments for the app, and private endpoints for the storage account and the vault, which then take no traffic from the internet.')
param vnetEnabled bool = false

@description('true when a profile uses auth type delegated: the app then writes the refresh tokens it obtains and rotates into the vault (the identity gets Key Vault Secrets Officer, not only Secrets User), and GET /api/connect needs OAUTH_STATE_KEY, read from the vault secret oauthStateKeySecretName.')
param delegatedAuth bool = false

@description('Vault secret holding the profiles document (JSON); the app setting MAIL_PROFILES is a Key Vault reference to it.')
param profilesSecretName string = 'mail-profiles'

@description('Vault secret holding OAUTH_STATE_KEY (32 characters or more), used when delegatedAuth is true.')
param oauthStateKeySecretName string = 'oauth-state-key'

@description('Application ID URI of this app\'s exposed API: the aud of the Entra tokens callers present (API_AUDIENCE). Empty: no Entra callers, and API_TENANT_ID and API_AUDIENCE stay unset.')
param apiAudience string = ''

@description('Tenant whose Entra tokens callers present (API_TENANT_ID); empty: the tenant of this deployment. Used only with apiAudience.')
param apiTenantId string = ''

@description('NCRONTAB schedule of the mailbox poll timer (POLL_SCHEDULE).')
param pollSchedule string = '0 */1 * * * *'

@description('Purge protection on the vault: a deleted vault and its secrets cannot be purged during the 90-day retention. Irreversible once on, and `azd down --purge` then cannot purge the vault; recommended for production.')
param keyVaultPurgeProtection bool = false

@description('Resource group name; empty: rg-<environment name>.')
param resourceGroupName string = ''

@description('Function App name (globally unique); empty: made from the abbreviations and the token.')
param functionAppName string = ''

@description('Storage account name (globally unique, 3-24 lowercase letters and digits); empty: made from the token.')
param storageAccountName string = ''

@description('Days the copies of delivered messages are kept for redelivery on demand (at least the largest receive.retainDays); 0: kept until deleted.')
@minValue(0)
param retainedMessageDays int = 7

@description('Key Vault name (globally unique, 3-24 characters); empty: made from the token.')
param keyVaultName string = ''

var abbrs = loadJsonContent('abbreviations.json')
var resourceToken = toLower(uniqueString(subscription().id, environmentName, location))
var tags = {
  'azd-env-name': environmentName
}
var appName = !empty(functionAppName) ? functionAppName : '${abbrs.webSitesFunctions}mail-${resourceToken}'
// Flex Consumption deploys from this blob container (container names: lowercase, 3-63 characters).
var deploymentContainerName = 'app-package-${toLower(take(appName, 32))}-${take(resourceToken, 7)}'

resource rg 'Microsoft.Resources/resourceGroups@2024-11-01' = {
  name: !empty(resourceGroupName) ? resourceGroupName : '${abbrs.resourcesResourceGroups}${environmentName}'
  location: location
  tags: tags
}

module identity 'app/identity.bicep' = {
  name: 'identity'
  scope: rg
  params: {
    name: '${abbrs.managedIdentityUserAssignedIdentities}mail-${resourceToken}'
    location: location
    tags: tags
  }
}

module storage 'app/storage.bicep' = {
  name: 'storage'
  scope: rg
  params: {
    name: !empty(storageAccountName) ? storageAccountName : '${abbrs.storageStorageAccounts}${resourceToken}'
    location: location
    tags: tags
    deploymentContainerName: deploymentContainerName
    vnetEnabled: vnetEnabled
    retainedMessageDays: retainedMessageDays
  }
}

module keyVault 'app/keyvault.bicep' = {
  name: 'key-vault'
  scope: rg
  params: {
    name: !empty(keyVaultName) ? keyVaultName : '${abbrs.keyVaultVaults}${resourceToken}'
    location: location
    tags: tags
    vnetEnabled: vnetEnabled
    enablePurgeProtection: keyVaultPurgeProtection
  }
}

module monitoring 'app/monitoring.bicep' = {
  name: 'monitoring'
  scope: rg
  params: {
    logAnalyticsName: '${abbrs.operationalInsightsWorkspaces}${resourceToken}'
    applicationInsightsName: '${abbrs.insightsComponents}${resourceToken}'
    location: location
    tags: tags
  }
}

module network 'app/network.bicep' = if (vnetEnabled) {
  name: 'network'
  scope: rg
  params: {
    vnetName: '${abbrs.networkVirtualNetworks}${resourceToken}'
    location: location
    tags: tags
    storageAccountId: storage.outputs.resourceId
    keyVaultId: keyVault.outputs.resourceId
  }
}

module rbac 'app/rbac.bicep' = {
  name: 'role-assignments'
  scope: rg
  params: {
    storageAccountName: storage.outputs.name
    keyVaultName: keyVault.outputs.name
    applicationInsightsName: monitoring.outputs.applicationInsightsName
    identityPrincipalId: identity.outputs.principalId
    delegatedAuth: delegatedAuth
    principalId: principalId
    principalType: principalType
  }
}

module api 'app/api.bicep' = {
  name: 'api'
  scope: rg
  params: {
    name: appName
    planName: '${abbrs.webServerFarms}${resourceToken}'
    location: location
    tags: tags
    nodeVersion: nodeVersion
    instanceMemoryMB: instanceMemoryMB
    maximumInstanceCount: maximumInstanceCount
    identityResourceId: identity.outputs.resourceId
    identityClientId: identity.outputs.clientId
    blobEndpoint: storage.outputs.blobEndpoint
    queueEndpoint: storage.outputs.queueEndpoint
    tableEndpoint: storage.outputs.tableEndpoint
    deploymentContainerName: deploymentContainerName
    applicationInsightsConnectionString: monitoring.outputs.connectionString
    keyVaultName: keyVault.outputs.name
    keyVaultUri: keyVault.outputs.uri
    profilesSecretName: profilesSecretName
    delegatedAuth: delegatedAuth
    oauthStateKeySecretName: oauthStateKeySecretName
    apiAudience: apiAudience
    apiTenantId: !empty(apiTenantId) ? apiTenantId : tenant().tenantId
    pollSchedule: pollSchedule
    virtualNetworkSubnetId: vnetEnabled ? network.outputs.appSubnetId : ''
  }
  // The app starts using Storage and resolving its Key Vault references as soon as it exists.
  dependsOn: [
    rbac
  ]
}

output AZURE_LOCATION string = location
output AZURE_TENANT_ID string = tenant().tenantId
output AZURE_RESOURCE_GROUP string = rg.name
output AZURE_FUNCTION_NAME string = api.outputs.name
output SERVICE_API_NAME string = api.outputs.name
output FUNCTION_BASE_URL string = api.outputs.baseUrl
output KEY_VAULT_URL string = keyVault.outputs.uri
output KEY_VAULT_NAME string = keyVault.outputs.name
output AZURE_STORAGE_ACCOUNT_NAME string = storage.outputs.name
// For profiles with auth managedIdentity (auth.clientId) or federated (auth.managedIdentityClientId,
// and the federated credential's subject, which is the principal id).
output MANAGED_IDENTITY_CLIENT_ID string = identity.outputs.clientId
output MANAGED_IDENTITY_PRINCIPAL_ID string = identity.outputs.principalId
output APPLICATIONINSIGHTS_CONNECTION_STRING string = monitoring.outputs.connectionString
