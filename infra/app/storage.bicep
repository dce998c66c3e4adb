// The storage account of the host and of the app's state (queues, tables, blobs), and the
// container Flex Consumption deploys the package from. Shared key access is off: every client
// authenticates with Entra ID.
@description('Storage account name: 3-24 lowercase letters and digits, globally unique.')
param name string

param location string = resourceGroup().location
param tags object = {}

@description('Blob container the Flex Consumption plan deploys the app package from.')
param deploymentContainerName string

@description('true: the account takes no traffic from the internet; the app reaches it through private endpoints (network.bicep).')
param vnetEnabled bool = false

@description('Days the copies of delivered messages (container mail-retained, for POST /api/profiles/{name}/redeliver) are kept: at least the largest receive.retainDays of the profiles. 0: no rule (copies stay until deleted).')
@minValue(0)
param retainedMessageDays int = 7

resource storage 'Microsoft.Storage/storageAccounts@2023-05-01' = {
  name: name
  location: location
  tags: tags
  kind: 'StorageV2'
  sku: {
    name: 'Standard_LRS'
  }
  properties: {
    accessTier: 'Hot'
    allowBlobPublicAccess: false
    allowCrossTenantReplication: false
    allowSharedKeyAccess: false
    defaultToOAuthAuthentication: true
    dnsEndpointType: 'Standard'
    minimumTlsVersion: 'TLS1_2'
    supportsHttpsTrafficOnly: true
    publicNetworkAccess: vnetEnabled ? 'Disabled' : 'Enabled'
    networkAcls: {
      defaultAction: vnetEnabled ? 'Deny' : 'Allow'
      bypass: vnetEnabled ? 'None' : 'AzureServices'
    }
  }
}

resource blobService 'Microsoft.Storage/storageAccounts/blobServices@2023-05-01' = {
  parent: storage
  name: 'default'
}

resource deploymentContainer 'Microsoft.Storage/storageAccounts/blobServices/containers@2023-05-01' = {
  parent: blobService
  name: deploymentContainerName
  properties: {
    publicAccess: 'None'
  }
}

// Copies of delivered messages older than retainedMessageDays are deleted by the platform (the app
// ignores a copy past its profile's receive.retainDays either way).
resource retention 'Microsoft.Storage/storageAccounts/managementPolicies@2023-05-01' = if (retainedMessageDays > 0) {
  parent: storage
  name: 'default'
  properties: {
    policy: {
      rules: [
        {
          name: 'delete-retained-messages'
          enabled: true
          type: 'Lifecycle'
          definition: {
            filters: {
              blobTypes: [ 'blockBlob' ]
              prefixMatch: [ 'mail-retained/' ]
            }
            actions: {
              baseBlob: {
                delete: { daysAfterModificationGreaterThan: retainedMessageDays }
              }
            }
          }
        }
      ]
    }
  }
}

output name string = storage.name
output resourceId string = storage.id
// Each ends with '/': https://<account>.blob.core.windows.net/ (and the cloud's suffix elsewhere).
output blobEndpoint string = storage.properties.primaryEndpoints.blob
output queueEndpoint string = storage.properties.primaryEndpoints.queue
output tableEndpoint string = storage.properties.primaryEndpoints.table
