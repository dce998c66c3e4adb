// With vnetEnabled: a virtual network whose 'app' subnet is delegated to
// Microsoft.App/environments (what Flex Consumption's virtual network integration requires),
// and private endpoints, with their private DNS zones linked to the network, for the storage
// account's blob, queue and table services and for the vault.
param vnetName string
param location string = resourceGroup().location
param tags object = {}
param storageAccountId string
param keyVaultId string

var appSubnetName = 'app'
var privateEndpointSubnetName = 'private-endpoints'

// Each name is also the private link group id of its service. Zone names per cloud: the storage suffix is core.windows.net in the public cloud; the vault's
// private link zone is privatelink.vaultcore.azure.net where the vault DNS suffix is
// .vault.azure.net (and likewise vaultcore.usgovcloudapi.net, vaultcore.azure.cn).
var privateLinks = [
  {
    name: 'blob'
    resourceId: storageAccountId
    zone: 'privatelink.blob.${environment().suffixes.storage}'
  }
  {
    name: 'queue'
    resourceId: storageAccountId
    zone: 'privatelink.queue.${environment().suffixes.storage}'
  }
  {
    name: 'table'
    resourceId: storageAccountId
    zone: 'privatelink.table.${environment().suffixes.storage}'
  }
  {
    name: 'vault'
    resourceId: keyVaultId
    zone: 'privatelink${replace(environment().suffixes.keyvaultDns, '.vault.', '.vaultcore.')}'
  }
]

module virtualNetwork 'br/public:avm/res/network/virtual-network:0.6.1' = {
  name: 'virtual-network'
  params: {
    name: vnetName
    location: location
    tags: tags
    addressPrefixes: [
      '10.0.0.0/16'
    ]
    subnets: [
      {
        name: privateEndpointSubnetName
        addressPrefix: '10.0.1.0/24'
        privateEndpointNetworkPolicies: 'Disabled'
        privateLinkServiceNetworkPolicies: 'Enabled'
      }
      {
        name: appSubnetName
        addressPrefix: '10.0.2.0/24'
        privateEndpointNetworkPolicies: 'Disabled'
        privateLinkServiceNetworkPolicies: 'Enabled'
        delegation: 'Microsoft.App/environments'
      }
    ]
  }
}

module privateDnsZones 'br/public:avm/res/network/private-dns-zone:0.7.1' = [
  for link in privateLinks: {
    name: 'private-dns-zone-${link.name}'
    params: {
      name: link.zone
      location: 'global'
      tags: tags
      virtualNetworkLinks: [
        {
          name: '${vnetName}-${link.name}'
          virtualNetworkResourceId: virtualNetwork.outputs.resourceId
          registrationEnabled: false
          location: 'global'
          tags: tags
        }
      ]
    }
  }
]

module privateEndpoints 'br/public:avm/res/network/private-endpoint:0.11.0' = [
  for (link, i) in privateLinks: {
    name: 'private-endpoint-${link.name}'
    params: {
      name: 'pep-${link.name}-${last(split(link.resourceId, '/'))}'
      location: location
      tags: tags
      subnetResourceId: '${virtualNetwork.outputs.resourceId}/subnets/${privateEndpointSubnetName}'
      privateLinkServiceConnections: [
        {
          name: '${link.name}-connection'
          properties: {
            privateLinkServiceId: link.resourceId
            groupIds: [
              link.name
            ]
          }
        }
      ]
      privateDnsZoneGroup: {
        name: '${link.name}-dns'
        privateDnsZoneGroupConfigs: [
          {
            name: link.name
            privateDnsZoneResourceId: privateDnsZones[i].outputs.resourceId
          }
        ]
      }
    }
  }
]

output appSubnetId string = '${virtualNetwork.outputs.resourceId}/subnets/${appSubnetName}'
