// The Function App on the Flex Consumption plan, and every app setting it gets.
param name string
param planName string
param location string = resourceGroup().location
param tags object = {}

@description('The azd service this app hosts (azure.yaml).')
param serviceName string = 'api'

@allowed([
  '20'
  '22'
])
param nodeVersion string = '20'

@allowed([
  512
  2048
  4096
])
param instanceMemoryMB int = 2048

@minValue(40)
@maxValue(1000)
param maximumInstanceCount int = 100

param identityResourceId string
param identityClientId string

@description('Storage service endpoints, each ending with /.')
param blobEndpoint string
param queueEndpoint string
param tableEndpoint string

param deploymentContainerName string
param applicationInsightsConnectionString string
param keyVaultName string
param keyVaultUri string
param profilesSecretName string
param delegatedAuth bool = false
param oauthStateKeySecretName string
param apiAudience string = ''
param apiTenantId string
param pollSchedule string

@description('Subnet delegated to Microsoft.App/environments; empty: no virtual network integration.')
param virtualNetworkSubnetId string = ''

resource plan 'Microsoft.Web/serverfarms@2024-04-01' = {
  name: planName
  location: location
  tags: tags
  kind: 'functionapp'
  sku: {
    name: 'FC1'
    tier: 'FlexConsumption'
  }
  properties: {
    reserved: true
  }
}

resource functionApp 'Microsoft.Web/sites@2024-04-01' = {
  name: name
  location: location
  tags: union(tags, { 'azd-service-name': serviceName })
  kind: 'functionapp,linux'
  identity: {
    type: 'UserAssigned'
    userAssignedIdentities: {
      '${identityResourceId}': {}
    }
  }
  properties: {
    serverFarmId: plan.id
    httpsOnly: true
    // Key Vault references in the app settings resolve with this identity (there is no system-assigned one).
    keyVaultReferenceIdentity: identityResourceId
    virtualNetworkSubnetId: !empty(virtualNetworkSubnetId) ? virtualNetworkSubnetId : null
    siteConfig: {
      minTlsVersion: '1.2'
      ftpsState: 'Disabled'
    }
    // Flex Consumption: the runtime is set here, not by FUNCTIONS_WORKER_RUNTIME (which this plan refuses).
    functionAppConfig: {
      deployment: {
        storage: {
          type: 'blobContainer'
          value: '${blobEndpoint}${deploymentContainerName}'
          authentication: {
            type: 'UserAssignedIdentity'
            userAssignedIdentityResourceId: identityResourceId
          }
        }
      }
      scaleAndConcurrency: {
        instanceMemoryMB: instanceMemoryMB
        maximumInstanceCount: maximumInstanceCount
      }
      runtime: {
        name: 'node'
        version: nodeVersion
      }
    }
  }
}

// azd deploys with an Entra token, so publishing needs no basic (user name and password) credentials.
resource scmBasicAuth 'Microsoft.Web/sites/basicPublishingCredentialsPolicies@2024-04-01' = {
  parent: functionApp
  name: 'scm'
  properties: {
    allow: false
  }
}

resource ftpBasicAuth 'Microsoft.Web/sites/basicPublishingCredentialsPolicies@2024-04-01' = {
  parent: functionApp
  name: 'ftp'
  properties: {
    allow: false
  }
}

// Every app setting is in one of the *AppSettings objects below, merged into the appsettings
// resource: test/infra/appSettings.test.ts reads them and checks them against what the app
// reads at start-up (shared/config/settings.ts) and docs/settings.md.

// The host's own storage, identity-based (no connection string, no key), and its telemetry
// with an Entra token for the same identity.
var hostAppSettings = {
  AzureWebJobsStorage__credential: 'managedidentity'
  AzureWebJobsStorage__clientId: identityClientId
  AzureWebJobsStorage__blobServiceUri: blobEndpoint
  AzureWebJobsStorage__queueServiceUri: queueEndpoint
  AzureWebJobsStorage__tableServiceUri: tableEndpoint
  APPLICATIONINSIGHTS_CONNECTION_STRING: applicationInsightsConnectionString
  APPLICATIONINSIGHTS_AUTHENTICATION_STRING: 'ClientId=${identityClientId};Authorization=AAD'
}

// The app's settings. AZURE_CLIENT_ID makes DefaultAzureCredential (the vault's client) use the
// user-assigned identity. MAIL_PROFILES is a Key Vault reference without a version: the newest
// version is read when the app starts (and at least once a day).
var mailAppSettings = {
  AZURE_CLIENT_ID: identityClientId
  KEY_VAULT_URL: keyVaultUri
  MAIL_PROFILES: '@Microsoft.KeyVault(VaultName=${keyVaultName};SecretName=${profilesSecretName})'
  POLL_SCHEDULE: pollSchedule
  OAUTH_REDIRECT_URI: 'https://${functionApp.properties.defaultHostName}/api/oauth/callback'
  // Where Graph posts change notifications of receive.push profiles: the app's own host name.
  NOTIFICATION_URL: 'https://${functionApp.properties.defaultHostName}'
}

var delegatedAuthAppSettings = delegatedAuth
  ? {
      OAUTH_STATE_KEY: '@Microsoft.KeyVault(VaultName=${keyVaultName};SecretName=${oauthStateKeySecretName})'
    }
  : {}

var callerAppSettings = !empty(apiAudience)
  ? {
      API_TENANT_ID: apiTenantId
      API_AUDIENCE: apiAudience
    }
  : {}

resource appSettings 'Microsoft.Web/sites/config@2024-04-01' = {
  parent: functionApp
  name: 'appsettings'
  properties: union(hostAppSettings, mailAppSettings, delegatedAuthAppSettings, callerAppSettings)
}

output name string = functionApp.name
output defaultHostName string = functionApp.properties.defaultHostName
output baseUrl string = 'https://${functionApp.properties.defaultHostName}/api'
