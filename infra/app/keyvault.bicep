// The vault of the profiles' secrets and of the profiles document. Access is Azure RBAC only
// (no access policies): the app's identity gets Key Vault Secrets User (rbac.bicep).
@description('Key Vault name: 3-24 letters, digits and dashes, globally unique.')
param name string

param location string = resourceGroup().location
param tags object = {}

@description('true: the vault takes no traffic from the internet; the app reaches it through a private endpoint (network.bicep).')
param vnetEnabled bool = false

@description('Purge protection; irreversible once on.')
param enablePurgeProtection bool = false

resource vault 'Microsoft.KeyVault/vaults@2023-07-01' = {
  name: name
  location: location
  tags: tags
  properties: {
    tenantId: subscription().tenantId
    sku: {
      family: 'A'
      name: 'standard'
    }
    enableRbacAuthorization: true
    enableSoftDelete: true
    softDeleteRetentionInDays: 90
    // Key Vault refuses false here ("cannot be set to false"): off means not set.
    enablePurgeProtection: enablePurgeProtection ? true : null
    publicNetworkAccess: vnetEnabled ? 'Disabled' : 'Enabled'
    networkAcls: {
      defaultAction: vnetEnabled ? 'Deny' : 'Allow'
      bypass: 'AzureServices'
    }
  }
}

output name string = vault.name
output resourceId string = vault.id
output uri string = vault.properties.vaultUri
