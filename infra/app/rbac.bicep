// Every role assignment, for the app's identity and for the user running azd.
param storageAccountName string
param keyVaultName string
param applicationInsightsName string

@description('Principal (object) id of the app\'s user-assigned identity.')
param identityPrincipalId string

@description('true: the identity also writes secrets (delegated refresh tokens): Key Vault Secrets Officer.')
param delegatedAuth bool = false

@description('Object id of the user or service principal running azd; empty: no assignments for it.')
param principalId string = ''

@allowed([
  'User'
  'ServicePrincipal'
])
param principalType string = 'User'

// Built-in role definition ids, from https://learn.microsoft.com/azure/role-based-access-control/built-in-roles
// (test/infra/roles.test.ts holds the same table).
var roles = {
  keyVaultSecretsUser: '4633458b-17de-408a-b874-0445c86b69e6'
  keyVaultSecretsOfficer: 'b86a8fe4-44ce-4948-aee5-eccb2c155cd7'
  storageBlobDataOwner: 'b7e6dc6d-f1e8-4753-8033-0f276bb0955b'
  storageQueueDataContributor: '974c5e8b-45b9-4653-ba55-5f855dd0fb88'
  storageTableDataContributor: '0a9a7e1f-b9d0-4cc4-a60d-0319b160aaa3'
  monitoringMetricsPublisher: '3913510d-42f4-4e42-8a64-420c390055eb'
}

// Blob Data Owner: the host's blobs and leases (identity-based AzureWebJobsStorage needs Owner,
// not Contributor), the deployment package, the app's payload and dead-letter containers.
// Queue and Table Data Contributor: the send and poll queues, and the app's state tables. The
// user running azd gets them too, to look into the deployment container, queues and tables.
var storageRoles = [
  roles.storageBlobDataOwner
  roles.storageQueueDataContributor
  roles.storageTableDataContributor
]

resource storage 'Microsoft.Storage/storageAccounts@2023-05-01' existing = {
  name: storageAccountName
}

resource vault 'Microsoft.KeyVault/vaults@2023-07-01' existing = {
  name: keyVaultName
}

resource applicationInsights 'Microsoft.Insights/components@2020-02-02' existing = {
  name: applicationInsightsName
}

// Each assignment: who, as what kind of principal, which role.
var appIdentity = {
  principalId: identityPrincipalId
  principalType: 'ServicePrincipal'
}
var azdPrincipal = {
  principalId: principalId
  principalType: principalType
}

var storageAssignments = concat(
  map(storageRoles, role => union(appIdentity, { role: role })),
  empty(principalId) ? [] : map(storageRoles, role => union(azdPrincipal, { role: role }))
)

// The user running azd puts the profiles document and the secrets into the vault.
var vaultAssignments = concat(
  [union(appIdentity, { role: roles.keyVaultSecretsUser })],
  delegatedAuth ? [union(appIdentity, { role: roles.keyVaultSecretsOfficer })] : [],
  empty(principalId) ? [] : [union(azdPrincipal, { role: roles.keyVaultSecretsOfficer })]
)

var telemetryAssignments = [
  union(appIdentity, { role: roles.monitoringMetricsPublisher })
]

resource storageRoleAssignments 'Microsoft.Authorization/roleAssignments@2022-04-01' = [
  for a in storageAssignments: {
    name: guid(storage.id, a.principalId, a.role)
    scope: storage
    properties: {
      roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', a.role)
      principalId: a.principalId
      principalType: a.principalType
    }
  }
]

resource vaultRoleAssignments 'Microsoft.Authorization/roleAssignments@2022-04-01' = [
  for a in vaultAssignments: {
    name: guid(vault.id, a.principalId, a.role)
    scope: vault
    properties: {
      roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', a.role)
      principalId: a.principalId
      principalType: a.principalType
    }
  }
]

resource telemetryRoleAssignments 'Microsoft.Authorization/roleAssignments@2022-04-01' = [
  for a in telemetryAssignments: {
    name: guid(applicationInsights.id, a.principalId, a.role)
    scope: applicationInsights
    properties: {
      roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', a.role)
      principalId: a.principalId
      principalType: a.principalType
    }
  }
]
